package t::TestAWSLambda;

# The shared helper of the plugin's .t files (like lua-resty-core's
# t/TestCore.pm), valid with both runners:
#
#   use t::TestAWSLambda 'no_plan';
#
#   prove -I. -It/runner t/                    (the project's compact runner)
#   prove -I. -I<test-nginx>/lib t/            (openresty/test-nginx)
#
# It re-exports Test::Nginx::Socket::Lua, and
# - points TEST_NGINX_BINARY / TEST_NGINX_LOAD_MODULES at Debian's nginx and
#   its lua + ndk modules when they are unset (configs never use /etc/nginx);
# - starts the mock function (t/mock/function.py) once per .t file on
#   $ENV{TEST_NGINX_MOCK_PORT} // 1990, or reuses a mock already answering
#   there, and stops the one it started when the file ends;
# - with `BEGIN { $t::TestAWSLambda::CredentialServers = 1 }` before the
#   `use`, starts the mock with its credential servers too (IMDSv2,
#   container credentials with an authorization token, moto's STS; ports
#   from TEST_NGINX_IMDS_PORT / _ECS_PORT / _STS_PORT or free ones) and sets
#   TEST_NGINX_IMDS_PORT, TEST_NGINX_ECS_PORT, TEST_NGINX_STS_PORT and
#   TEST_NGINX_ECS_TOKEN to what the mock serves (a reused mock must have them);
# - sets TEST_NGINX_ROOT (the project root), TEST_NGINX_MOCK_PORT and
#   TEST_NGINX_HTML_DIR for $TEST_NGINX_* substitution in sections, and
#   exports them as $root and $mock_port;
# - prepends lua_package_path / lua_package_cpath (lua/, t/lib/, build/lib/)
#   to every block's http_config (unless the block sets them itself);
#   $ENV{TEST_AWSL_LUA_DIR} and $ENV{TEST_AWSL_LIB_DIR} replace lua/ and
#   build/lib/ (ci/install-test.sh points them at an installed rock tree,
#   share/lua/5.1 and lib/lua/5.1), t/lib/ stays; gives
#   a block without --- no_error_log one of [alert] and [emerg] (and [error]
#   unless it expects an --- error_log), and a block without
#   --- request a `GET /t`; blocks run once each, in order;
# - adds every string in @t::TestAWSLambda::NeverLogged (secrets) to every
#   block's --- no_error_log (text or an eval'd list);
# - turns a --- plugin_conf section (a Lua expression for the plugin's
#   configuration table) into the plugin on two routes, the way APISIX runs
#   it in its access phase: `location = /aws` (no path suffix) and
#   `location ~ ^/aws/(.*)$` (the capture is the route's wildcard suffix,
#   APISIX's ctx.curr_req_matched[":ext"]). The table is made once, in
#   init_by_lua, so that every request sees the same configuration table, as
#   in APISIX.

use strict;
use warnings;

use Cwd ();
use File::Basename ();
use File::Spec ();

our ($root, $mock_port);

# Set (in a BEGIN block before the `use`) to start the credential servers.
our $CredentialServers;

# Strings (secrets) that no block's error.log may contain, whatever it tests.
our @NeverLogged;

BEGIN {
    $root = Cwd::abs_path(File::Spec->catdir(File::Basename::dirname(__FILE__), '..'));

    # both runners read these when they are loaded, so before the `use` below
    if (!defined $ENV{TEST_NGINX_BINARY} && -x '/usr/sbin/nginx') {
        $ENV{TEST_NGINX_BINARY} = '/usr/sbin/nginx';
    }
    my $mods = '/usr/lib/nginx/modules';
    if (!defined $ENV{TEST_NGINX_LOAD_MODULES} && -f "$mods/ngx_http_lua_module.so") {
        $ENV{TEST_NGINX_LOAD_MODULES} =
            "$mods/ndk_http_module.so $mods/ngx_http_lua_module.so";
    }
}

use Test::Nginx::Socket::Lua -Base;

use IO::Select ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes ();

our @EXPORT = qw($root $mock_port);

repeat_each(1);
no_shuffle();
no_long_string();

# An explicit TEST_NGINX_MOCK_PORT may name a mock that is already running; without
# one, this file starts its own mock on the first free port from 1990, so that a
# mock left over from another checkout is never used by mistake.
my $mock_port_given = defined $ENV{TEST_NGINX_MOCK_PORT};
$mock_port = $ENV{TEST_NGINX_MOCK_PORT} // 1990;
$ENV{TEST_NGINX_ROOT} = $root;
$ENV{TEST_NGINX_HTML_DIR} //= html_dir();

my $mock_pid;
my $parent_pid = $$;

# 'mock' when a mock function answers on the port, 'other' when something
# else holds it, undef when nothing listens
my $probe = sub {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mock_port,
                                     Proto => 'tcp', Timeout => 2)
        or return undef;
    print $sock "GET /probe HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n";
    my $resp = '';
    my $sel = IO::Select->new($sock);
    while ($sel->can_read(3)) {
        my $n = sysread($sock, my $buf, 4096);
        last if !$n;
        $resp .= $buf;
    }
    close $sock;
    return ($resp =~ /^HTTP\/1\.1 200 / && $resp =~ /\nsignature: none\n/
            && $resp =~ /\nconn: \d+\n/) ? 'mock' : 'other';
};

my $start_mock = sub {
    # the first python3 that has botocore (pyenv's, or Debian's python3-botocore)
    # (and moto for the credential servers)
    my $modules = $CredentialServers ? 'botocore, moto' : 'botocore';
    my $python = $ENV{TEST_NGINX_PYTHON}
        || ((grep { system("$_ -c 'import $modules' 2>/dev/null") == 0 }
             'python3', '/usr/bin/python3')[0] // 'python3');
    my @servers = !$CredentialServers ? () : (
        '--imds-port', $ENV{TEST_NGINX_IMDS_PORT} // 0,
        '--ecs-port', $ENV{TEST_NGINX_ECS_PORT} // 0,
        '--ecs-token', $ENV{TEST_NGINX_ECS_TOKEN} // 'mock-container-authorization-token',
        '--sts-port', $ENV{TEST_NGINX_STS_PORT} // 0);
    my $log = $ENV{TEST_NGINX_MOCK_LOG} || "$root/t/servroot-mock.log";
    if (open my $out, '>>', $log) {
        print $out "=== $0: mock on port $mock_port\n";
        close $out;
    }
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork();
    die "fork: $!" if !defined $pid;
    if ($pid == 0) {
        close $rd;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $wr;
        open STDERR, '>>', $log or open STDERR, '>', '/dev/null';
        exec $python, "$root/t/mock/function.py", '--host', '127.0.0.1',
             '--port', $mock_port, @servers
            or POSIX::_exit(127);
    }
    close $wr;
    my $line = '';
    my $sel = IO::Select->new($rd);
    my $deadline = Time::HiRes::time() + 30;
    while ($line !~ /\n/ && Time::HiRes::time() < $deadline) {
        last if !$sel->can_read($deadline - Time::HiRes::time());
        my $n = sysread($rd, my $buf, 256);
        last if !$n;
        $line .= $buf;
    }
    close $rd;
    if ($line !~ /^mock function listening on /) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        die "t::TestAWSLambda: the mock function did not start on port $mock_port "
            . "($python $root/t/mock/function.py; see $log)\n";
    }
    $mock_pid = $pid;
};

{
    my $state = $probe->();
    if (!$mock_port_given) {
        while (defined $state && $mock_port < 2090) {
            $mock_port++;
            $state = $probe->();
        }
    }
    $ENV{TEST_NGINX_MOCK_PORT} = $mock_port;
    if (!defined $state) {
        $start_mock->();
    } elsif ($state ne 'mock') {
        die "t::TestAWSLambda: port $mock_port is taken by something that is not the "
            . "mock function (set TEST_NGINX_MOCK_PORT)\n";
    }
    if ($CredentialServers) {
        # the ports the mock's credential servers listen on: {"imds_port": N, ...}
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mock_port,
                                         Proto => 'tcp', Timeout => 2);
        my $resp = '';
        if ($sock) {
            print $sock "GET /_servers HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n";
            my $sel = IO::Select->new($sock);
            while ($sel->can_read(3)) {
                last if !sysread($sock, my $buf, 4096);
                $resp .= $buf;
            }
            close $sock;
        }
        my %servers;
        while ($resp =~ /"(\w+)":\s*(?:"([^"]*)"|(\d+))/g) {
            $servers{$1} = $2 // $3;
        }
        for my $name (qw(imds ecs sts)) {
            die "t::TestAWSLambda: the mock on port $mock_port has no $name server "
                . "(stop it, or unset TEST_NGINX_MOCK_PORT)\n" if !$servers{"${name}_port"};
            $ENV{'TEST_NGINX_' . uc($name) . '_PORT'} = $servers{"${name}_port"};
        }
        $ENV{TEST_NGINX_ECS_TOKEN} = $servers{ecs_token} // '';
    }
}

END {
    if ($mock_pid && $$ == $parent_pid) {
        local $?;
        kill 'TERM', $mock_pid;
        my $waited = 0;
        while (waitpid($mock_pid, POSIX::WNOHANG()) == 0 && $waited < 5) {
            Time::HiRes::sleep(0.05);
            $waited += 0.05;
        }
        if ($waited >= 5) {
            kill 'KILL', $mock_pid;
            waitpid $mock_pid, 0;
        }
        undef $mock_pid;
    }
}

add_block_preprocessor(sub {
    my $block = shift;

    my $http_config = $block->http_config // '';
    my $lua_dir = $ENV{TEST_AWSL_LUA_DIR} || "$root/lua";
    my $lib_dir = $ENV{TEST_AWSL_LIB_DIR} || "$root/build/lib";
    my $paths = '';
    if ($http_config !~ /^\s*lua_package_path\b/m) {
        $paths .= qq{    lua_package_path "$lua_dir/?.lua;$root/t/lib/?.lua;;";\n};
    }
    if ($http_config !~ /^\s*lua_package_cpath\b/m) {
        $paths .= qq{    lua_package_cpath "$lib_dir/?.so;;";\n};
    }
    $block->set_value('http_config', $paths . $http_config);

    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', defined $block->error_log ? "[alert]\n[emerg]"
                                                                    : "[error]\n[alert]\n[emerg]");
    }
    $block->set_value('request', 'GET /t') if !defined $block->request;
    if (@NeverLogged) {
        my $never = $block->no_error_log;
        # a `--- no_error_log eval` list keeps its patterns (regexes among them)
        $block->set_value('no_error_log', ref $never eq 'ARRAY'
            ? [@$never, @NeverLogged]
            : join("\n", grep { $_ ne '' } $never // '', @NeverLogged));
    }

    my $conf = $block->plugin_conf;
    if (defined $conf) {
        chomp $conf;
        $block->set_value('http_config', $block->http_config . <<_EOC_);
    init_by_lua_block {
        PLUGIN_CONF = $conf
    }
_EOC_
        $block->set_value('config', ($block->config // '') . <<'_EOC_');
    location = /aws {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run(PLUGIN_CONF, nil, "/aws")
        }
    }
    location ~ ^/aws/(.*)$ {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run(PLUGIN_CONF, ngx.var[1],
                                                               "/aws/*")
        }
    }
_EOC_
    }
});

1;
