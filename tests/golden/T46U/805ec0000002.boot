#!version:1.0.0.1
## phoneprov boot file for 805ec0000002 (T46U), site acme.
## The model's common file first, then the phone's own file: later files win.
include:config "y000000000108.cfg"
include:config "805ec0000002.cfg"
overwrite_mode = 1
