std = "ngx_lua"
max_line_length = 100
unused_args = false
redefined = false
