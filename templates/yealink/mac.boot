#!version:1.0.0.1
## phoneprov boot file for {{ phone.mac }} ({{ model.name }}), site {{ site.name }}.
## The model's common file first, then the phone's own file: later files win.
include:config "y000000000{{ model.code }}.cfg"
include:config "{{ phone.mac }}.cfg"
overwrite_mode = 1
