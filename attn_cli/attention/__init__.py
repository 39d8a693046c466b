"""Every attention mechanism, once (DESIGN §3.1). Each returns the context **and the weights**.

Dimension legend used in shape comments across the package:

    B  batch            Tq  query steps (target length)     Tk  key/memory length (source length)
    D  model width      Dk  key width     Dv  value width    V   vocabulary
    K  beam size        L   feature-grid locations (h*w)     H, W  image height, width
    C  channels         N   filterbank size (DRAW)           M  memory slots      G  glimpse scales
"""
