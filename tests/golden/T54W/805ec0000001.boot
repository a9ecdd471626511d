#!version:1.0.0.1
## phoneprov boot file for 805ec0000001 (T54W), site acme.
## The model's common file first, then the phone's own file: later files win.
include:config "y000000000096.cfg"
include:config "805ec0000001.cfg"
overwrite_mode = 1
