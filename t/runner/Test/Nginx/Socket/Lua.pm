package Test::Nginx::Socket::Lua;

# Compact stand-in for openresty/test-nginx's Test::Nginx::Socket::Lua: the
# runner in ../Socket.pm plus TEST_NGINX_INIT_BY_LUA, the environment
# variable whose Lua code is put into init_by_lua / init_by_lua_block
# (added to http_config when the block has neither).

use strict;
use warnings;

use Test::Nginx::Socket -base;

our $VERSION = '0.33-compact';

my $code = $ENV{TEST_NGINX_INIT_BY_LUA};

if ($code) {
    (my $escaped = $code) =~ s/\\/\\\\/g;
    $escaped =~ s/['"]/\\$&/g;

    Test::Nginx::Socket::set_http_config_filter(sub {
        my $config = shift;
        return $config if $config =~ /init_by_lua_file/;
        # an active (not commented) init_by_lua '...' / "..."
        return $config
            if $config =~ s{(?<!\#)(?<!\# )(?<!\#  )init_by_lua\s*(['"])((?:\\.|.)*)\1\s*;}
                           {init_by_lua $1$escaped$2$1;}s;
        return $config
            if $config =~ s{(?<!\#)(?<!\# )(?<!\#  )init_by_lua_block\s*\{}
                           {init_by_lua_block \{ $code }s;
        return $config . "init_by_lua '$escaped';";
    });
}

1;
