package Test::Nginx::Socket;

# A compact, independent implementation of the subset of
# Test::Nginx::Socket (openresty/test-nginx) that this project's .t files
# use.  It is built on Debian's Test::Base and aims to behave like the real
# module for that subset: the same nginx.conf layout, the same environment
# variables, the same block sections, the same number and names of tests.
#
#   prove -I. -It/runner t/                      # this runner
#   prove -I. -I/path/to/test-nginx/lib t/       # the real one
#
# What is supported: see the POD at the end of this file.

use strict;
use warnings;
use v5.10.1;

# lower-case -base: subclass Test::Base without Spiffy's source filter.
use Test::Base -base;

use Carp qw(croak);
use Cwd ();
use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Select ();
use IO::Socket::INET ();
use List::Util qw(shuffle min);
use POSIX qw(SIGQUIT SIGKILL SIGTERM WNOHANG EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use Socket qw(SHUT_WR);
use Time::HiRes qw(sleep time);

our $VERSION = '0.33-compact';

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test
    repeat_each config_preamble worker_connections
    master_process_enabled
    no_long_string workers master_on master_off
    log_level no_shuffle no_root_location use_hup
    server_name
    server_addr server_root html_dir server_port server_port_for_client
    timeout no_nginx_manager check_accum_error_log
    add_block_preprocessor bail_out add_test_cleanup_handler add_cleanup_handler
    add_response_body_check
);

# forward declarations (prototypes are checked at call sites)
sub env_to_nginx (@);
sub repeat_each (@);
sub worker_connections (@);
sub workers (@);
sub log_level (@);
sub timeout (@);
sub master_on ();
sub master_off ();
sub master_process_enabled (@);
sub no_long_string ();
sub no_shuffle ();
sub no_root_location ();
sub config_preamble ($);
sub check_accum_error_log ();
sub server_name (@);
sub server_addr (@);
sub server_port (@);
sub server_port_for_client (@);
sub server_root ();
sub html_dir ();
sub add_block_preprocessor (&);
sub add_cleanup_handler ($);
sub add_test_cleanup_handler ($);
sub add_response_body_check ($);
sub set_http_config_filter ($);
sub use_hup ();
sub no_nginx_manager ();
sub bail_out (@);
sub _show ($);
sub _is_string ($$$);
sub _is ($$$);
sub is_str (@);
sub fmt_str ($);
sub trim ($);
sub parse_time ($);
sub _free_port ($);
sub expand_env_in_text ($$$);
sub is_running ($);
sub get_pid_from_pidfile ($);
sub kill_process ($$);
sub stop_nginx ($);
sub cleanup ();
sub get_nginx_version ();
sub can_run ($);
sub setup_server_root ();
sub write_user_files ($$);
sub write_config_file ($$$);
sub parse_request ($$);
sub parse_more_headers ($);
sub build_request ($$$$$);
sub _more_headers_for ($$);
sub get_req_from_block ($);
sub send_request ($$$$;$);
sub sleep_time ();
sub parse_response ($$$);
sub parse_headers ($);
sub get_indexed_value ($$$$);
sub check_error_code ($$$$);
sub check_raw_response_headers ($$$$);
sub check_response_headers ($$$$$);
sub run_filter_helper ($$$);
sub transform_response_body ($$$);
sub check_response_body ($$$$$);
sub error_log_data ();
sub value_contains ($$);
sub _pattern_list ($);
sub _line_matches ($$);
sub check_error_log ($$$);
sub check_shutdown_error_log ($$);
sub check_prev_block_shutdown_error_log ();
sub run_tests ();
sub _skip_count ($);
sub _start_nginx ($$$);
sub run_test ($);
sub run_test_helper ($$);

# ---------------------------------------------------------------------------
# configuration (same environment variables and defaults as the real one)
# ---------------------------------------------------------------------------

our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES};
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled        = 'on';
our $ServerPort           = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient  = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort || 1984;
our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $TestNginxSleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $CheckAccumErrLog     = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $Verbose              = $ENV{TEST_NGINX_VERBOSE};
our $WorkerUser           = $ENV{TEST_NGINX_WORKER_USER};
our $Workers              = 1;
our $WorkerConnections    = 64;
our $RepeatEach           = 1;
our $NoLongString;
our $NoRootLocation       = 0;
our $ConfigPreamble       = '';
our $FilterHttpConfig;
our @EnvToNginx;
our @BlockPreprocessors;
our @CleanupHandlers;
our @TestCleanupHandlers;
our @ResponseBodyChecks;

our $ServRoot   = $ENV{TEST_NGINX_SERVROOT} || File::Spec->rel2abs('t/servroot');
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
our $LogDir     = File::Spec->catfile($ServRoot, 'logs');
our $ErrLogFile = File::Spec->catfile($LogDir, 'error.log');
our $AccLogFile = File::Spec->catfile($LogDir, 'access.log');
our $HtmlDir    = File::Spec->catfile($ServRoot, 'html');
our $ConfDir    = File::Spec->catfile($ServRoot, 'conf');
our $ConfFile   = File::Spec->catfile($ConfDir, 'nginx.conf');
our $PidFile    = File::Spec->catfile($LogDir, 'nginx.pid');
our $CacheDir   = File::Spec->catfile($ServRoot, 'cache');

our ($NginxVersion, $NginxV, $PrevConfig, $PrevBlock, $ErrLogFilePos,
     $RandPorts, $TotalConnectingTimeouts, $StartPid);
$TotalConnectingTimeouts = 0;
$StartPid = $$;

if (defined $WorkerUser && $WorkerUser !~ /^\w[-\w]+(?:\s+\w[-\w]+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

# ---------------------------------------------------------------------------
# the functions a .t file calls
# ---------------------------------------------------------------------------

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" if !@_;
    for my $v (@_) {
        if ($v !~ /^[A-Za-z_]/ || $v =~ /\n/) {
            croak "env_to_nginx: bad argument value: $v\n";
        }
        push @EnvToNginx, $v;
    }
}

sub repeat_each (@) { $RepeatEach = shift if @_; return $RepeatEach }
sub worker_connections (@) { if (@_) { $WorkerConnections = shift } else { return $WorkerConnections } }
sub workers (@) { if (@_) { $Workers = shift } else { return $Workers } }
sub log_level (@) { if (@_) { $LogLevel = shift } else { return $LogLevel } }
sub timeout (@) { if (@_) { $Timeout = shift } else { return $Timeout } }
sub master_on () { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    if (@_) { $MasterProcessEnabled = shift() ? 'on' : 'off' }
    else { return $MasterProcessEnabled }
}
sub no_long_string () { $NoLongString = 1 }
sub no_shuffle () { $NoShuffle = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub config_preamble ($) { $ConfigPreamble = shift }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub server_name (@) { if (@_) { $ServerName = shift } else { return $ServerName } }
sub server_addr (@) { if (@_) { $ServerAddr = shift } else { return $ServerAddr } }
sub server_port (@) { if (@_) { $ServerPort = shift } else { return $ServerPort } }
sub server_port_for_client (@) {
    if (@_) { $ServerPortForClient = shift } else { return $ServerPortForClient }
}
sub server_root () { return $ServRoot }
sub html_dir () { return $HtmlDir }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler ($) { unshift @TestCleanupHandlers, shift }
sub add_response_body_check ($) { push @ResponseBodyChecks, shift }
sub set_http_config_filter ($) { $FilterHttpConfig = shift }

sub use_hup () {
    warn "WARNING: use_hup() is not supported by the compact runner; ignored\n";
}

sub no_nginx_manager () {
    croak "no_nginx_manager() is not supported by the compact runner";
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

# ---------------------------------------------------------------------------
# string comparison helpers
# ---------------------------------------------------------------------------

sub _show ($) {
    my $s = shift;
    return 'undef' if !defined $s;
    my $t = length($s) > 70 ? substr($s, 0, 70) . '...' : $s;
    $t =~ s/([\\"])/\\$1/g;
    $t =~ s/([\0-\037\177-\377])/sprintf('\\x{%02x}', ord $1)/ge;
    return qq{"$t"};
}

# like Test::LongString::is_string: on failure, say where the strings begin
# to differ, with lengths, and add a diff for multi-line strings.
sub _is_string ($$$) {
    my ($got, $expected, $desc) = @_;
    if (!defined $got || !defined $expected) {
        local $Test::Builder::Level = $Test::Builder::Level + 1;
        return Test::More::is($got, $expected, $desc);
    }
    my $tb = Test::More->builder;
    if ($got eq $expected) {
        return $tb->ok(1, $desc);
    }
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = $tb->ok(0, $desc);
    my $common = 0;
    {
        # length of the common prefix: the leading NULs of the xor
        no warnings;
        my $n = min(length $got, length $expected);
        my $x = substr($got, 0, $n) ^ substr($expected, 0, $n);
        $common = $x =~ /^(\0*)/ ? length $1 : 0;
    }
    my $before = substr($got, 0, $common);
    my $line = 1 + ($before =~ tr/\n//);
    my $col = $common - (rindex($before, "\n") + 1) + 1;
    my $ctx = $common > 50 ? $common - 20 : 0;
    my $msg = sprintf("         got: %s\n      length: %d\n    expected: %s\n"
                      . "      length: %d\n    strings begin to differ at char %d "
                      . "(line %d column %d)\n",
                      ($ctx ? '...' : '') . _show(substr($got, $ctx)), length $got,
                      ($ctx ? '...' : '') . _show(substr($expected, $ctx)), length $expected,
                      $common + 1, $line, $col);
    if (($got =~ /\n./s || $expected =~ /\n./s)
        && length($got) + length($expected) < 1 << 20
        && eval { require Text::Diff; 1 })
    {
        $msg .= Text::Diff::diff(\$expected, \$got,
                                 { FILENAME_A => 'expected', FILENAME_B => 'got' });
    }
    $tb->diag($msg);
    return $ok;
}

sub _is ($$$) {
    my ($got, $expected, $desc) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if ($NoLongString) {
        # Test::Base's is(): Text::Diff diff for multi-line strings
        return Test::Base::is($got, $expected, $desc);
    }
    return _is_string($got, $expected, $desc);
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    return _is($got, $expected, $desc);
}

sub fmt_str ($) {
    my $str = shift;
    chomp $str;
    $str =~ s/"/\\"/g;
    $str =~ s/\r/\\r/g;
    $str =~ s/\n/\\n/g;
    $str;
}

sub trim ($) {
    my $s = shift;
    return undef if !defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    $s;
}

sub parse_time ($) {
    my $tm = shift;
    if (defined $tm) {
        if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
            $tm = $tm / 1000;
        } else {
            $tm =~ s/([^_a-zA-Z])s$/$1/;
        }
    }
    return $tm;
}

# ---------------------------------------------------------------------------
# environment expansion, processes, server root, nginx.conf
# ---------------------------------------------------------------------------

sub _free_port ($) {
    my $used = shift;
    for (1 .. 1000) {
        my $port = 10000 + int(rand(50000));
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                          LocalPort => $port, Proto => 'tcp',
                                          Listen => 1, ReuseAddr => 1);
        if ($sock) {
            close $sock;
            return $port;
        }
    }
    return undef;
}

sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return undef if !defined $text;
    $rand_ports //= {};
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $val;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            if (!defined $rand_ports->{$var}) {
                my %used = ($ServerPort => 1, map { $_ => 1 } values %$rand_ports);
                my $p = _free_port(\%used);
                bail_out("$name - Cannot find an available listening port number for $var.\n")
                    if !defined $p;
                $rand_ports->{$var} = $p;
            }
            $val = $rand_ports->{$var};
        } else {
            bail_out("$name - No environment $var defined.\n") if !defined $ENV{$var};
            $val = $ENV{$var};
        }
        $val;
    }eg;
    return $text;
}

# a zombie counts as gone: a daemonized nginx is re-parented to PID 1, which
# may take its time to reap it (seconds, in some containers and VMs)
sub is_running ($) {
    my $pid = shift;
    return 0 if !kill 0, $pid;
    if (open my $in, '<', "/proc/$pid/stat") {
        my $stat = <$in> // '';
        close $in;
        return 0 if $stat =~ /^\d+ \(.*\) Z/s;
    }
    return 1;
}

sub get_pid_from_pidfile ($) {
    my $name = shift;
    open my $in, '<', $PidFile or return undef;
    my $pid = do { local $/; <$in> };
    close $in;
    return undef if !defined $pid;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

# QUIT, wait up to timeout() for the process to go away, then SIGKILL (the
# process group when the process leads one, as a daemonized nginx does).
sub kill_process ($$) {
    my ($pid, $name) = @_;
    return if !$pid || !is_running($pid);
    kill SIGQUIT, $pid;
    my $left = timeout();
    while ($left > 0 && is_running($pid)) {
        waitpid($pid, WNOHANG);
        sleep 0.02;
        $left -= 0.02;
    }
    if (is_running($pid)) {
        warn "$name - timeout when waiting for the process $pid to exit\n";
        if (getpgrp($pid) == $pid) {
            kill SIGKILL, -$pid;
        } else {
            kill SIGKILL, $pid;
        }
        for (1 .. 100) {
            waitpid($pid, WNOHANG);
            last if !is_running($pid);
            sleep 0.02;
        }
    }
}

sub stop_nginx ($) {
    my $name = shift;
    return if !-f $PidFile;
    my $pid = get_pid_from_pidfile($name);
    if ($pid && is_running($pid)) {
        kill_process($pid, $name);
    }
    unlink $PidFile if -f $PidFile;
}

sub cleanup () {
    for my $hdl (@CleanupHandlers) {
        $hdl->();
    }
}

sub get_nginx_version () {
    $NginxV //= `$NginxBinary -V 2>&1`;
    if (!defined $NginxV || $? != 0) {
        bail_out("Failed to get the version of the Nginx in PATH: " . ($NginxV // ''));
    }
    if ($NginxV =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $NginxV =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        return sprintf "%d.%03d%03d", $1, $2, $3;
    }
    bail_out("Failed to parse the output of \"nginx -V\": $NginxV\n");
}

sub can_run ($) {
    my $cmd = shift;
    if ($cmd =~ m{/}) {
        return (-f $cmd && -x $cmd) ? $cmd : undef;
    }
    for my $dir (split(/:/, $ENV{PATH} // ''), '.') {
        next if $dir eq '';
        my $abs = File::Spec->catfile($dir, $cmd);
        return $abs if -f $abs && -x $abs;
    }
    return undef;
}

sub setup_server_root () {
    if (-d $ServRoot) {
        # only remove what we create, as the real runner does
        remove_tree($ConfDir, glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"),
                    $CacheDir, $HtmlDir, $LogDir);
        rmdir $ServRoot
            or bail_out("Can't remove $ServRoot (not empty?): $!");
    }
    for my $d ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        mkdir $d or bail_out("Failed to do mkdir $d: $!\n");
    }
    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!\n");
    print $out '<html><head><title>It works!</title></head><body>It works!</body></html>';
    close $out;
}

sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;
    my $files = $block->user_files;
    return if !$files;
    if (!ref $files) {
        my $raw = $files;
        open my $in, '<', \$raw;
        $files = [];
        my ($fname, $body, $date);
        while (<$in>) {
            if (/>>> (\S+)(?:\s+(.+))?/) {
                push @$files, [$fname, $body, $date] if $fname;
                ($fname, $date) = ($1, $2);
                undef $body;
            } else {
                $body .= $_;
            }
        }
        push @$files, [$fname, $body, $date] if $fname;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: " . ref($files)
                 . ", only scalar or ARRAY are accepted");
    }
    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body //= '';
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/}) {
            make_path($1) if !-d $1;
        }
        $body = expand_env_in_text($body, $name, $rand_ports);
        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;
        if ($date) {
            my $cmd = "TZ=GMT touch -t '$date' '$path'";
            system($cmd) == 0 or bail_out("Failed to run shell command: $cmd\n");
        }
    }
}

sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    my $http_config = expand_env_in_text($block->http_config, $name, $rand_ports) // '';
    $http_config = $FilterHttpConfig->($http_config) if $FilterHttpConfig;

    my $main_config = $block->main_config // '';
    if ($LoadModules) {
        my @modules = map { "load_module $_;" } grep { $_ } split /\s+/, $LoadModules;
        $main_config = join ' ', @modules, $main_config if @modules;
    }
    $main_config = expand_env_in_text($main_config, $name, $rand_ports);
    my $post_main_config = expand_env_in_text($block->post_main_config, $name, $rand_ports) // '';

    my $err_log_file = $block->error_log_file || $ErrLogFile;
    $err_log_file = expand_env_in_text($err_log_file, $name, $rand_ports);

    my $server_name = $block->server_name // $ServerName;
    (my $quoted_server_name = $server_name) =~ s/\\/\\\\/g;
    $quoted_server_name =~ s/'/\\'/g;

    $NginxV //= `$NginxBinary -V 2>&1` // '';
    my %temp = (
        client_body => "client_body_temp_path $ServRoot/client_body_temp;",
        proxy       => "proxy_temp_path $ServRoot/proxy_temp;",
        fastcgi     => "fastcgi_temp_path $ServRoot/fastcgi_temp;",
        scgi        => "scgi_temp_path $ServRoot/scgi_temp;",
        uwsgi       => "uwsgi_temp_path $ServRoot/uwsgi_temp;",
    );
    for my $m (qw(fastcgi scgi uwsgi)) {
        $temp{$m} = '' if $NginxV =~ /--without-http_${m}_module/;
    }
    $temp{proxy} = '' if $http_config =~ /\bproxy_temp_path\b/;
    $temp{client_body} = '' if $http_config =~ /\bclient_body_temp_path\b/;
    my $temp_paths = join ' ', @temp{qw(client_body proxy fastcgi scgi uwsgi)};

    # The layout follows the real runner's line for line, so that line
    # numbers in messages such as "content_by_lua(nginx.conf:40)" agree.
    my @env = qw(MOCKEAGAIN_VERBOSE MOCKEAGAIN MOCKEAGAIN_WRITE_TIMEOUT_PATTERN
                 LD_PRELOAD LD_LIBRARY_PATH DYLD_INSERT_LIBRARIES
                 DYLD_FORCE_FLAT_NAMESPACE);
    for my $v (@EnvToNginx) {
        push @env, $v =~ /\s/ ? "'$v'" : $v;
    }
    my $env = join '', map { "env $_;\n" } @env;

    my $root_location = $NoRootLocation ? '' : <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $user = '';
    if (defined $WorkerUser) {
        $user = "user $WorkerUser;\n";
    } elsif ($> == 0) {
        $user = "user root;\n";
    }

    my $conf = <<_EOC_;
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $err_log_file $LogLevel;
pid       $PidFile;
$env#env LUA_PATH;
#env LUA_CPATH;

$main_config

http {
    access_log $AccLogFile; $temp_paths
    #access_log off;

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config
    server {
        listen          $ServerPort;
        #placeholder
        server_name     '$quoted_server_name';
        
        client_max_body_size 30M;
        #client_body_buffer_size 4k;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

#timer_resolution 100ms;

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
}
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
$user
_EOC_
    chomp $conf;

    open my $out, '>', $ConfFile or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out $conf;
    close $out;
}

# ---------------------------------------------------------------------------
# requests
# ---------------------------------------------------------------------------

sub parse_request ($$) {
    my ($name, $rreq) = @_;
    open my $in, '<', $rreq;
    my $first = <$in>;
    bail_out("$name - Request line should be non-empty") if !$first;
    my ($meth, $url, $ver);
    if ($first =~ /^\s*(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/) {
        ($meth, $url, $ver) = ($1, $2, $3);
    } else {
        bail_out("$name - Request line is not valid. Should be 'meth [url [version]]' "
                 . "but got \"$first\".");
    }
    my $content = do { local $/; <$in> } // '';
    close $in;
    return { method => $meth, url => $url // '/', http_ver => $ver // 'HTTP/1.1',
             content => $content };
}

sub parse_more_headers ($) {
    my $in = shift;
    my ($out, $is_chunked) = ('', undef);
    for my $header (split /\n+/, $in) {
        next if $header =~ /^\s*\#/;
        my ($key, $val) = split /:\s*/, $header, 2;
        $val //= '';
        $is_chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# turns the request text into the bytes sent: request line, Host,
# Connection, more_headers, Content-Length, blank line, body.  As in the
# real runner, a body is trimmed of surrounding white space when we add the
# Content-Length ourselves.
sub build_request ($$$$$) {
    my ($name, $more_headers, $is_chunked, $conn, $text) = @_;
    my $r = parse_request($name, \$text);
    my $len_header = '';
    if (!$is_chunked && $r->{content} ne ''
        && $more_headers !~ /(?:^|\n)Content-Length:/)
    {
        $r->{content} =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($r->{content}) . "\r\n";
    }
    $more_headers =~ s/(?<!\r)\n/\r\n/gs;
    my $headers = '';
    $headers .= "Host: $ServerName\r\n" if $more_headers !~ /(?:^|\n)Host:/msi;
    $headers .= "Connection: $conn\r\n" if $more_headers !~ /(?:^|\n)Connection/msi;
    $headers .= "$more_headers$len_header\r\n";
    return "$r->{method} $r->{url} $r->{http_ver}\r\n$headers$r->{content}";
}

sub _more_headers_for ($$) {
    my ($more_headers, $i) = @_;
    if (ref $more_headers eq 'ARRAY') {
        my $hdr = $more_headers->[$i];
        bail_out("--- more_headers lacks data for the ${i}th request") if !defined $hdr;
        return parse_more_headers($hdr);
    }
    return parse_more_headers($more_headers);
}

# returns a list of requests; each request is a list of packets
# ({ value => bytes, delay_before => secs }).
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;
    my @reqs;

    if (defined $block->raw_request) {
        my $raw = $block->raw_request;
        if (ref $raw eq 'ARRAY') {
            push @reqs, [map { { value => $_ } } @$raw];
        } else {
            push @reqs, [{ value => $raw }];
        }
        return \@reqs;
    }

    my $request = $block->request;
    if (defined $request && !ref $request) {
        1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
    }
    my $more_headers = $block->more_headers || '';

    if (my $list = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            if ref $list ne 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$list) {
            my $one = expand_env_in_text($list->[$i], $name, $RandPorts);
            my ($hdr, $chunked) = _more_headers_for($more_headers, $i);
            $all .= build_request($name, $hdr, $chunked,
                                  $i == $#$list ? 'close' : 'keep-alive', $one);
        }
        return [[{ value => $all }]];
    }

    bail_out("$name - request empty") if !defined $request;

    if (!ref $request) {
        my ($hdr, $chunked) = _more_headers_for($more_headers, 0);
        return [[{ value => build_request($name, $hdr, $chunked, 'close', $request) }]];
    }

    if (ref $request ne 'ARRAY') {
        bail_out("$name - invalid ---request : MUST be string or array of requests");
    }

    my $i = 0;
    for my $one (@$request) {
        my ($hdr, $chunked) = _more_headers_for($more_headers, $i);
        if (!ref $one) {
            push @reqs, [{ value => build_request($name, $hdr, $chunked, 'close', $one) }];
        } elsif (ref $one eq 'ARRAY') {
            # a request sent as several packets: build the whole request from
            # their concatenation, then cut it again at the same boundaries
            # (the added headers go into the packet holding the request line)
            my @packets = map { ref $_ ? { %$_ } : { value => $_ } } @$one;
            my $joined = join '', map { $_->{value} } @packets;
            my $built = build_request($name, $hdr, $chunked, 'close', $joined);
            my $extra = length($built) - length($joined);
            my $off = 0;
            for my $k (0 .. $#packets) {
                my $len = length $packets[$k]{value};
                $len += $extra if $k == 0;
                $len = length($built) - $off if $k == $#packets;
                $packets[$k]{value} = substr($built, $off, $len);
                $off += $len;
            }
            push @reqs, \@packets;
        } else {
            bail_out("$name - Invalid syntax. $one should be a string or an array of packets.");
        }
        $i++;
    }
    return \@reqs;
}

# sends one request over a fresh connection and reads until the server
# closes it (or the idle timeout fires).
sub send_request ($$$$;$) {
    my ($packets, $middle_delay, $timeout, $block, $tries) = @_;
    my $name = $block->name;
    my @bits = map { { %$_ } } @$packets;
    my $head_req = (join('', map { $_->{value} } @bits) =~ /^\s*HEAD\s+/) ? 1 : 0;
    my $addr = $block->server_addr_for_client // $ServerAddr;

    my $sock = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $ServerPortForClient,
                                     Proto => 'tcp', Timeout => $timeout);
    if (!$sock) {
        $tries ||= 1;
        my $total = $TotalConnectingTimeouts ? 20 : 50;
        if ($tries <= $total) {
            my $wait = (sleep_time() + sleep_time() * $tries) * $tries / 2;
            $wait = 1 if $wait >= 1;
            warn "$name - Can't connect to $addr:$ServerPortForClient: $!\n" if $wait >= 0.6;
            sleep $wait;
            return send_request($packets, $middle_delay, $timeout, $block, $tries + 1);
        }
        my $msg = "$name - Can't connect to $addr:$ServerPortForClient: $! (aborted)\n";
        if (++$TotalConnectingTimeouts < 3) {
            Test::More->builder->no_ending(1);
            Test::More::fail($msg);
        } else {
            bail_out($msg);
        }
        return (undef, $head_req);
    }
    $sock->blocking(0);
    binmode $sock;

    my $resp = '';
    my $first = shift @bits;
    my ($wbuf, $woff) = ($first->{value}, 0);
    my $writing = 1;
    my $sel = IO::Select->new($sock);

    local $SIG{PIPE} = 'IGNORE';    # a server that closes early fails the write instead
    while (1) {
        $! = 0;
        my ($r, $w) = IO::Select->select($sel, $writing ? $sel : undef, undef, $timeout);
        if (!$r && !$w) {
            if ($! == EINTR) { next }
            # idle timeout
            close $sock;
            if (!defined $block->abort) {
                Test::More->builder->no_ending(1);
                Test::More::fail("ERROR: client socket timed out - $name\n");
            } else {
                sleep 0.005;
            }
            last;
        }
        if ($w && @$w) {
            while (1) {
                my $rest = length($wbuf) - $woff;
                if ($rest > 0) {
                    my $n = syswrite($sock, $wbuf, $rest, $woff);
                    if (!defined $n) {
                        last if $! == EAGAIN || $! == EWOULDBLOCK;
                        warn "write failed: $!\n";
                        $resp = "write failed: $!" if $resp eq '';
                        $writing = 0;
                        last;
                    }
                    $woff += $n;
                    next;
                }
                my $next = shift @bits;
                if (!$next) {
                    $writing = 0;
                    my $shutdown = $block->shutdown;
                    if (defined $shutdown) {
                        $shutdown = 1 if $shutdown =~ /^\s*$/s;
                        shutdown($sock, $shutdown);
                    }
                    last;
                }
                my $delay = $next->{delay_before} // $middle_delay;
                sleep $delay if $delay;
                ($wbuf, $woff) = ($next->{value}, 0);
            }
        }
        if ($r && @$r) {
            my $done;
            while (1) {
                my $n = sysread($sock, my $buf, 65536);
                if (!defined $n) {
                    last if $! == EAGAIN || $! == EWOULDBLOCK;
                    warn "WARNING: $name - HTTP response read failure: $!";
                    $done = 1;
                    last;
                }
                if ($n == 0) { $done = 1; last }
                $resp .= $buf;
            }
            if ($done) {
                close $sock;
                last;
            }
        }
    }
    return ($resp, $head_req);
}

sub sleep_time () { return $TestNginxSleep }

# ---------------------------------------------------------------------------
# responses (a small stand-in for HTTP::Response)
# ---------------------------------------------------------------------------

package Test::Nginx::Socket::Response;

sub new {
    my ($class, %args) = @_;
    return bless { code => $args{code}, message => $args{message},
                   headers => $args{headers} || [], content => $args{content} }, $class;
}

sub code { my $s = shift; $s->{code} = shift if @_; $s->{code} }
sub message { $_[0]{message} }
sub content { my $s = shift; $s->{content} = shift if @_; $s->{content} }

# like HTTP::Headers: all values of the field, joined with ", " in scalar
# context; a list in list context.
sub header {
    my ($s, $key) = @_;
    my @v = map { $_->[1] } grep { lc $_->[0] eq lc $key } @{ $s->{headers} };
    return @v if wantarray;
    return @v ? join(', ', @v) : undef;
}

sub headers_list { @{ $_[0]{headers} } }

package Test::Nginx::Socket;

# parses like HTTP::Response->parse plus the chunked/length handling of the
# real runner; returns ($res, $raw_headers, $left)
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;
    my $left;
    my $raw_headers = '';
    if ($raw =~ /(.*?\r\n)\r\n/s) {
        $raw_headers = $1;
    }

    my ($head, $content);
    if ($raw =~ /\A(.*?)\r?\n\r?\n(.*)\z/s) {
        ($head, $content) = ($1, $2);
    } else {
        ($head, $content) = ($raw, '');
    }
    my @lines = split /\r?\n/, $head;
    my $status_line = shift(@lines) // '';
    my ($code, $message);
    if ($status_line =~ /^\d{3} /) {
        ($code, $message) = split ' ', $status_line, 2;
    } else {
        (undef, $code, $message) = split ' ', $status_line, 3;
    }
    my @headers;
    for my $l (@lines) {
        if ($l =~ /^[ \t]+(.*)/ && @headers) {
            $headers[-1][1] .= " $1";
        } elsif ($l =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/) {
            push @headers, [$1, $2];
        }
    }
    $code = undef if defined $code && $code !~ /^\d+$/;
    my $res = Test::Nginx::Socket::Response->new(code => $code, message => $message,
                                                 headers => \@headers, content => $content);
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');
    my @trailers = $res->header('Trailer');

    if (defined $enc && $enc eq 'chunked') {
        my $decoded = '';
        pos($content) = 0;
        while (1) {
            if (!@trailers && $content =~ /\G0[ \t]*\r\n\r\n/gc) {
                $left = $1 if $content =~ /\G(.+)/gcs;
                last;
            }
            if (@trailers && $content =~ /\G0[ \t]*\r\n/gc) {
                for my $t (@trailers) {
                    if ($content !~ /\G(\Q$t\E: [^\n]*\r\n)/gcs) {
                        Test::More->builder->no_ending(1);
                        Test::More::fail("$name - invalid trailer data received (expected $t).");
                        return ($res, $raw_headers);
                    }
                }
                if ($content !~ /\G\r\n/gc) {
                    Test::More->builder->no_ending(1);
                    Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                    return ($res, $raw_headers);
                }
                $left = $1 if $content =~ /\G(.+)/gcs;
                last;
            }
            if ($content =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
                my $size = hex $1;
                my $at = pos $content;
                if (length($content) - $at < $size) {
                    Test::More->builder->no_ending(1);
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(not enought octets for the data section)");
                    return ($res, $raw_headers);
                }
                $decoded .= substr($content, $at, $size);
                pos($content) = $at + $size;
                if ($content !~ /\G\r\n/gc) {
                    Test::More->builder->no_ending(1);
                    Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                    return ($res, $raw_headers);
                }
            } elsif ($content =~ /\G(.+)/gcs) {
                Test::More->builder->no_ending(1);
                Test::More::fail("$name - invalid chunked body received: $1");
                return ($res, $raw_headers);
            } else {
                Test::More->builder->no_ending(1);
                Test::More::fail("$name - no last chunk found - $content");
                return ($res, $raw_headers);
            }
        }
        $res->content($decoded);
    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $content < $len) {
            warn "WARNING: $name - response body truncated: $len expected, but got ",
                length $content, "\n" if !$head_req;
        } elsif (length $content > $len) {
            $left = substr $content, $len;
            $res->content(substr $content, 0, $len);
        }
    }
    return ($res, $raw_headers, $left);
}

sub parse_headers ($) {
    my $s = shift;
    my %headers;
    open my $in, '<', \$s;
    while (<$in>) {
        s/^\s+|\s+$//g;
        next if $_ eq '';
        if (s/^!\s*//) {
            $headers{$_} = undef;
        } else {
            my ($key, $val) = split /\s*:\s*/, $_, 2;
            $headers{$key} = $val;
        }
    }
    close $in;
    return \%headers;
}

# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

sub get_indexed_value ($$$$) {
    my ($name, $value, $idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$idx] if ref $value && ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    if (ref $value && ref $value eq 'ARRAY') {
        bail_out("$name - SHOULD NOT HAPPEN: idx != 0 and don't need array.") if $idx;
        return $value->[0];
    }
    return $value;
}

sub check_error_code ($$$$) {
    my ($block, $res, $idx, $need_array) = @_;
    my $name = $block->name;
    my $got = ($res && $res->code) || '';
    if (defined $block->error_code_like) {
        my $val = get_indexed_value($name, $block->error_code_like, $idx, $need_array);
        Test::More::like($got, qr/$val/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        Test::More::is($got, get_indexed_value($name, $block->error_code, $idx, $need_array),
                       "$name - status code ok");
    } else {
        Test::More::is($got, 200, "$name - status code ok");
    }
}

sub check_raw_response_headers ($$$$) {
    my ($block, $raw_headers, $idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->raw_response_headers_like) {
        my $exp = get_indexed_value($name, $block->raw_response_headers_like, $idx, $need_array);
        Test::More::like($raw_headers, qr/$exp/s, "$name - raw resp headers like");
    }
    if (defined $block->raw_response_headers_unlike) {
        my $exp = get_indexed_value($name, $block->raw_response_headers_unlike, $idx, $need_array);
        Test::More::unlike($raw_headers, qr/$exp/s, "$name - raw resp headers unlike");
    }
}

sub check_response_headers ($$$$$) {
    my ($block, $res, $raw_headers, $idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->response_headers) {
        my $headers = parse_headers(get_indexed_value($name, $block->response_headers,
                                                      $idx, $need_array));
        for my $key (sort keys %$headers) {
            my $val = $headers->{$key};
            if (!defined $val) {
                Test::More::unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                                   "$name - header $key not present in the raw headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            my $actual = $res ? $res->header($key) : undef;
            Test::More::is($actual // '', $val, "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $headers = parse_headers(get_indexed_value($name, $block->response_headers_like,
                                                      $idx, $need_array));
        for my $key (sort keys %$headers) {
            my $val = $headers->{$key} // '';
            my $actual = $res ? $res->header($key) : undef;
            Test::More::like($actual // '', qr/^$val$/, "$name - header $key like ok");
        }
    }
}

sub run_filter_helper ($$$) {
    my ($block, $filter, $content) = @_;
    my $name = $block->name;
    if (ref $filter eq 'CODE') {
        return $filter->($content);
    }
    bail_out("$name - the --- response_body_filters section only supports subroutine "
             . "reference values and string values") if ref $filter;
    my %f = (
        md5_hex  => sub { require Digest::MD5; Digest::MD5::md5_hex($_[0]) },
        sha1_hex => sub { require Digest::SHA; Digest::SHA::sha1_hex($_[0]) },
        uc => sub { uc $_[0] }, lc => sub { lc $_[0] },
        ucfirst => sub { ucfirst $_[0] }, lcfirst => sub { lcfirst $_[0] },
        length => sub { length $_[0] },
    );
    my $code = $f{$filter}
        or bail_out("$name - unknown filter, \"$filter\", specified in the "
                    . "--- response_body_filters section");
    return $code->($content);
}

sub transform_response_body ($$$) {
    my ($block, $res, $idx) = @_;
    return if !defined $res || !defined $res->content;
    my $filters = $block->response_body_filters;
    return if !defined $filters;
    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [split /\s+/, $filters];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }
    my $f = $filters;
    if (ref $filters->[0] eq 'ARRAY') {
        $f = $filters->[$idx];
        bail_out($block->name . " - the ---response_body_filters two-dimensional array "
                 . "unmatch the specified request($idx)") if !defined $f;
    }
    my $new = $res->content;
    for my $one (ref $f eq 'ARRAY' ? @$f : ($f)) {
        $new = run_filter_helper($block, $one, $new);
    }
    $res->content($new);
}

sub check_response_body ($$$$$) {
    my ($block, $res, $idx, $repeated_idx, $need_array) = @_;
    my $name = $block->name;
    if (defined(my $file = $block->write_resp_body_file)) {
        if ($res) {
            open my $out, '>', $file or bail_out("$name - failed to write to file '$file': $!");
            print $out $res->content // '';
            close $out;
        }
    }
    if (defined $block->response_body || defined $block->response_body_eval) {
        my $content = $res ? $res->content : undef;
        my $expected;
        if ($block->response_body_eval) {
            $expected = eval get_indexed_value($name, $block->response_body_eval,
                                               $idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $block->response_body, $idx, $need_array);
        }
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected = expand_env_in_text($expected, $name, $RandPorts);
        }
        my $desc = "$name - response_body - ";
        if (ref $expected) {
            Test::More::like($content, $expected,
                             "${desc}like (repeated req $repeated_idx, req $idx)");
        } else {
            _is($content, $expected,
                "${desc}response is expected (repeated req $repeated_idx, req $idx)");
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my ($patterns, $type, $cmp) = defined $block->response_body_like
            ? ($block->response_body_like, 'like', \&Test::More::like)
            : ($block->response_body_unlike, 'unlike', \&Test::More::unlike);
        my $content = $res ? $res->content : undef;
        my $pat = get_indexed_value($name, $patterns, $idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        my $summary = trim($content) // '';
        $cmp->($content, qr/$pat/s,
               "$name - response_body_$type - response is expected ($summary)");
    }
    for my $check (@ResponseBodyChecks) {
        $check->($block, $res ? $res->content : undef, $idx, $repeated_idx, 0);
    }
}

sub error_log_data () {
    # give log-phase lines (written after the response) time to land
    sleep $TestNginxSleep * 3;
    open my $in, '<', $ErrLogFile or return undef;
    if (!$CheckAccumErrLog && $ErrLogFilePos && $ErrLogFilePos > 0) {
        seek $in, $ErrLogFilePos, 0;
    }
    my @lines = <$in>;
    $ErrLogFilePos = tell($in) if !$CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub value_contains ($$) {
    my ($val, $pat) = @_;
    if (!ref $val || ref $val eq 'Regexp') {
        return $val =~ /\Q$pat\E/;
    }
    if (ref $val eq 'ARRAY') {
        for my $v (@$val) {
            return 1 if value_contains($v, $pat);
        }
    }
    return undef;
}

sub _pattern_list ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub _line_matches ($$) {
    my ($line, $pat) = @_;
    return (ref $pat && $line =~ /$pat/) || $line =~ /\Q$pat\E/;
}

sub check_error_log ($$$) {
    my ($block, $repeated_idx, $need_array) = @_;
    my $name = $block->name;
    my $lines;
    my %warn_for = ('writing a global lua variable' => 1, '[alert' => 1,
                    '[crit' => 1, '[emerg' => 1);

    my $grep_pats = $block->grep_error_log;
    my $grep_pat;
    if (defined $grep_pats) {
        $grep_pat = (ref $grep_pats eq 'ARRAY') ? $grep_pats->[$repeated_idx] : $grep_pats;
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but --- grep_error_log_out is defined");
    }
    if (defined $grep_pat) {
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- grep_error_log is defined")
            if !defined $expected;
        $expected = expand_env_in_text($expected, $name, $RandPorts) if !ref $expected;
        $expected = $expected->[$repeated_idx] if ref $expected eq 'ARRAY';
        $lines ||= error_log_data();
        my $matched = '';
        for my $line (@{ $lines || [] }) {
            if ((ref $grep_pat && $line =~ /$grep_pat/) || $line =~ /\Q$grep_pat\E/) {
                $matched .= "$&\n" if $& !~ /\n/;
            }
        }
        if (ref $expected eq 'Regexp') {
            Test::More::like($matched, $expected,
                             "$name - grep_error_log_out (req $repeated_idx)");
        } else {
            _is($matched, $expected, "$name - grep_error_log_out (req $repeated_idx)");
        }
    }

    if (defined $block->error_log) {
        my $raw = $block->error_log;
        for my $k (keys %warn_for) { delete $warn_for{$k} if value_contains($raw, $k) }
        my $pats = _pattern_list($raw);
        $lines ||= error_log_data();
        for my $line (@{ $lines || [] }) {
            for my $pat (@$pats) {
                next if !defined $pat;
                if (_line_matches($line, $pat)) {
                    Test::More::pass("$name - pattern \"$pat\" matches a line in error.log "
                                     . "(req $repeated_idx)");
                    undef $pat;
                }
            }
        }
        for my $pat (@$pats) {
            next if !defined $pat;
            Test::More::fail("$name - pattern \"$pat\" should match a line in error.log "
                             . "(req $repeated_idx)");
        }
    }

    if (defined $block->no_error_log) {
        my $raw = $block->no_error_log;
        for my $k (keys %warn_for) { delete $warn_for{$k} if value_contains($raw, $k) }
        my $pats = _pattern_list($raw);
        my %found;
        $lines ||= error_log_data();
        my @l = @{ $lines || [] };
        for my $i (0 .. $#l) {
            for my $pat (@$pats) {
                next if !defined $pat;
                if (_line_matches($l[$i], $pat)) {
                    Test::More->builder->no_ending(1) if $found{$pat}++;
                    my @more;
                    for (my $j = $i + 1; $j < min($i + 10, @l - 1); $j++) {
                        push @more, $l[$j];
                    }
                    Test::More::fail("$name - pattern \"" . fmt_str($pat)
                                     . "\" should not match any line in error.log but "
                                     . "matches line \"" . fmt_str($l[$i])
                                     . "\" (req $repeated_idx)\n" . join('', @more));
                }
            }
        }
        for my $pat (@$pats) {
            next if !defined $pat || $found{$pat};
            Test::More::pass("$name - pattern \"" . fmt_str($pat)
                             . "\" does not match a line in error.log (req $repeated_idx)");
        }
    }

    my %re = ('writing a global lua variable' => qr/writing a global lua variable/,
              '[alert' => qr/\[alert\]/, '[crit' => qr/\[crit\]/, '[emerg' => qr/\[emerg\]/);
    for my $k (sort keys %warn_for) {
        $lines ||= error_log_data();
        for my $line (@{ $lines || [] }) {
            warn "WARNING: $name - " . fmt_str($line) . "\n" if $line =~ $re{$k};
        }
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            Test::More->builder->no_ending(1);
            chomp(my $l = $line);
            Test::More::fail("$name - $l\n");
        }
    }
}

sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;
    my $name = $block->name;
    my $lines;
    if ($dry_run) {
        # as the real runner: one skipped test per pattern
        for my $sec (qw(shutdown_error_log no_shutdown_error_log)) {
            next if !defined $block->$sec;
            my $n = @{ _pattern_list($block->$sec) };
          SKIP: {
                Test::More::skip("$name - $sec - tests skipped due to dry_run", $n);
            }
        }
        return;
    }
    if (defined $block->shutdown_error_log) {
        my $pats = _pattern_list($block->shutdown_error_log);
        $lines ||= error_log_data();
        for my $line (@{ $lines || [] }) {
            for my $pat (@$pats) {
                next if !defined $pat;
                if (_line_matches($line, $pat)) {
                    Test::More::pass("$name - pattern \"$pat\" matches a line in error.log");
                    undef $pat;
                }
            }
        }
        for my $pat (@$pats) {
            next if !defined $pat;
            Test::More::fail("$name - pattern \"$pat\" should match a line in error.log");
        }
    }
    if (defined $block->no_shutdown_error_log) {
        my $pats = _pattern_list($block->no_shutdown_error_log);
        my %found;
        $lines ||= error_log_data();
        for my $line (@{ $lines || [] }) {
            for my $pat (@$pats) {
                next if !defined $pat;
                if (_line_matches($line, $pat)) {
                    Test::More->builder->no_ending(1) if $found{$pat}++;
                    Test::More::fail("$name - pattern \"" . fmt_str($pat) . "\" should not "
                                     . "match any line in error.log but matches line \""
                                     . fmt_str($line) . "\"");
                }
            }
        }
        for my $pat (@$pats) {
            next if !defined $pat || $found{$pat};
            Test::More::pass("$name - pattern \"" . fmt_str($pat)
                             . "\" does not match a line in error.log");
        }
    }
}

sub check_prev_block_shutdown_error_log () {
    my $block = $PrevBlock;
    return if !defined $block;
    undef $PrevBlock;
    if (defined $block->shutdown_error_log || defined $block->no_shutdown_error_log) {
        check_shutdown_error_log($block, $ENV{TEST_NGINX_NO_CLEAN});
    }
}

# ---------------------------------------------------------------------------
# running blocks
# ---------------------------------------------------------------------------

sub run_tests () {
    $NginxVersion = get_nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks if !$NoShuffle;
    for my $block (@blocks) {
        for my $hdl (@BlockPreprocessors) {
            $hdl->($block);
        }
        $block->set_value('name', "$0 " . $block->name);
        run_test($block);
        for my $hdl (@TestCleanupHandlers) {
            $hdl->($block);
        }
        $PrevBlock = $block;
    }
    cleanup();
}

sub _skip_count ($) {
    my $block = shift;
    my $name = $block->name;
    if (defined(my $spec = $block->skip_eval)) {
        if ($spec =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            my ($n, $code) = ($1, $2);
            my $skip = eval $code;
            bail_out("$name - skip_eval - failed to eval the Perl code \"$code\": $@") if $@;
            return ($n, 'skip_eval') if $skip;
        }
    }
    if (defined(my $spec = $block->skip_nginx)) {
        if ($spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/) {
            my ($n, $op, $reason) = ($1, $2, $6);
            my $ver = sprintf "%d.%03d%03d", $3, $4, $5;
            if (eval "$NginxVersion $op $ver") {
                return ($n, $reason || "nginx version $op $3.$4.$5");
            }
        } else {
            bail_out("$name - Invalid --- skip_nginx spec: $spec");
        }
    }
    return;
}

sub _start_nginx ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    stop_nginx($name);
    check_prev_block_shutdown_error_log();

    setup_server_root();
    if (my $code = $block->post_setup_server_root) {
        eval $code;
        bail_out("$name - post_setup_server_root failed: $@") if $@;
    }
    write_user_files($block, $rand_ports);
    write_config_file($block, $config, $rand_ports);

    if (!can_run($NginxBinary)) {
        bail_out("$name - Cannot find the nginx executable in the PATH environment");
    }

    my $cmd = "$NginxBinary -e $ErrLogFile -p $ServRoot/ -c $ConfFile > /dev/null";
    $cmd .= " 2> /dev/null" if defined $block->suppress_stderr;
    warn "starting nginx: $cmd\n" if $Verbose;
    my $waited = 0;
    while (1) {
        system($cmd);
        my $status = $?;
        last if $status == 0;
        # retry only while the port is still held (e.g. by an exiting nginx)
        my $log = '';
        if (open my $in, '<', $ErrLogFile) { local $/; $log = <$in> // ''; close $in }
        if ($log =~ /Address already in use/ && $waited < 10) {
            sleep 0.2;
            $waited += 0.2;
            truncate $ErrLogFile, 0;
            next;
        }
        my @tail = (split /\n/, $log)[-10 .. -1];
        Test::More::fail("$name - Cannot start nginx using command \"$cmd\" "
                         . "(status code $status).");
        Test::More::diag(join "\n", grep { defined } @tail);
        return 0;
    }
    sleep $TestNginxSleep;
    return 1;
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;
    my $name = $block->name;

    my $rand_ports = {};
    $RandPorts = $rand_ports;
    my $config = expand_env_in_text($block->config, $name, $rand_ports);

    local $LogLevel = $LogLevel;
    $LogLevel = $block->log_level if $block->log_level;

    my ($skip_n, $skip_reason) = _skip_count($block);

    if (defined $config) {
        $PrevConfig = $config;
        if (!$skip_n) {
            _start_nginx($block, $config, $rand_ports) or return;
        }
    } elsif (!defined $PrevConfig) {
        bail_out("$name - No '--- config' section specified and could not get previous one.");
    }
    # no --- config: the running nginx of the previous block is reused

    if (my $code = $block->init) {
        eval $code;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogFilePos = 0;
    for my $i (1 .. $RepeatEach) {
        write_user_files($block, $rand_ports) if $i > 1;
        if ($skip_n) {
          SKIP: {
                Test::More::skip("$name - $skip_reason", $skip_n);
            }
            next;
        }
        run_test_helper($block, $i - 1);
    }

    if (my $total = $ENV{TEST_NGINX_ERROR_LOG}) {
        if (-s $ErrLogFile) {
            open my $out, '>>', $total
                or bail_out("Failed to append test case title to $total: $!\n");
            print $out "\n=== $0 $name\n";
            if (open my $in, '<', $ErrLogFile) { print $out $_ while <$in>; close $in }
            close $out;
        }
    }
}

sub run_test_helper ($$) {
    my ($block, $repeated_idx) = @_;
    my $name = $block->name;
    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") if !@$reqs;

    my $timeout = parse_time($block->timeout) // timeout();
    my ($n, $need_array);
    my $req_idx = 0;

    for my $one (@$reqs) {
        my ($raw, $head_req) = send_request($one, $block->raw_request_middle_delay,
                                            $timeout, $block);
        if ($block->pipelined_requests) {
            $n = @{ $block->pipelined_requests };
            $need_array = 1;
        } else {
            $need_array = @$reqs > 1;
        }
        $raw //= '';

        while (1) {
            my ($res, $raw_headers, $left);
            if (!defined $block->ignore_response) {
                if (defined $block->http09) {
                    $res = Test::Nginx::Socket::Response->new(code => 200, message => 'OK',
                                                             content => $raw);
                    $raw_headers = '';
                } else {
                    ($res, $raw_headers, $left) = parse_response($name, $raw, $head_req);
                }
            }
            if (!$n) {
                if (defined $left && $left ne '') {
                    (my $l = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                    warn "WARNING: $name - unexpected extra bytes after last chunk in "
                        . "response: \"$l\"\n";
                }
            } else {
                $raw = $left // '';
                $n--;
            }
            if (!defined $block->ignore_response) {
                check_error_code($block, $res, $req_idx, $need_array);
                check_raw_response_headers($block, $raw_headers, $req_idx, $need_array);
                check_response_headers($block, $res, $raw_headers, $req_idx, $need_array);
                transform_response_body($block, $res, $req_idx);
                check_response_body($block, $res, $req_idx, $repeated_idx, $need_array);
            }
            if ($n || $req_idx < @$reqs - 1) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $repeated_idx, $need_array);
            }
            $req_idx++;
            last if !$n;
        }
    }

    sleep $block->wait if $block->wait;
    check_error_log($block, $repeated_idx, $need_array);
}

END {
    if ($$ == $StartPid) {
        local $?;
        cleanup();
        if (!$ENV{TEST_NGINX_NO_CLEAN}) {
            stop_nginx('END');
        }
        check_prev_block_shutdown_error_log();
    }
}

1;
__END__

=head1 NAME

Test::Nginx::Socket - compact runner for the subset of openresty/test-nginx
that this project's t/*.t files use

=head1 SUPPORTED

Functions: plan, repeat_each, no_long_string, no_shuffle, no_root_location,
workers, worker_connections, master_on, master_off, master_process_enabled,
log_level, timeout, env_to_nginx, config_preamble, check_accum_error_log,
add_block_preprocessor, add_cleanup_handler, add_test_cleanup_handler,
add_response_body_check, server_name, server_addr, server_port,
server_port_for_client, server_root, html_dir, is_str, bail_out, run_tests,
and everything Test::Base exports (blocks, is, ok, like, ...).

Sections: main_config, post_main_config, http_config, config, server_name,
error_log_file, log_level, user_files, post_setup_server_root, init,
request (string, eval'd list of requests, list of packets), raw_request,
raw_request_middle_delay, pipelined_requests, more_headers, timeout, abort,
shutdown, wait, error_code, error_code_like, response_headers (incl. !Name),
response_headers_like, raw_response_headers_like/unlike, response_body
(string or eval'd qr//), response_body_like/unlike, response_body_filters,
write_resp_body_file, ignore_response, http09, error_log, no_error_log,
grep_error_log, grep_error_log_out, shutdown_error_log,
no_shutdown_error_log, skip_eval, skip_nginx, suppress_stderr, ONLY/SKIP/LAST.

Environment: TEST_NGINX_BINARY, TEST_NGINX_LOAD_MODULES, TEST_NGINX_PORT,
TEST_NGINX_SERVER_PORT, TEST_NGINX_CLIENT_PORT, TEST_NGINX_SERVROOT,
TEST_NGINX_NO_CLEAN, TEST_NGINX_LOG_LEVEL, TEST_NGINX_TIMEOUT,
TEST_NGINX_SLEEP, TEST_NGINX_MASTER_PROCESS, TEST_NGINX_NO_SHUFFLE,
TEST_NGINX_WORKER_USER, TEST_NGINX_ERROR_LOG, TEST_NGINX_CHECK_ACCUM_ERR_LOG,
TEST_NGINX_VERBOSE, TEST_NGINX_INIT_BY_LUA (Lua.pm).
$TEST_NGINX_XXX in sections is replaced by the environment value.

Behaviour as in the real runner: blocks are shuffled unless no_shuffle();
each block with a --- config gets a fresh server root (conf, html, logs) and
a fresh nginx (the one of the previous block is stopped with QUIT first,
SIGKILL to its process group after timeout()); a block without --- config
reuses the running nginx; nginx.conf has the same text, line for line;
requests go over a raw socket with Host and Connection: close added, and
the response is read until the server closes (idle timeout: --- timeout or
timeout()); error_log checks read only the lines added since the last check
of the block; the last nginx is stopped when the test file ends (unless
TEST_NGINX_NO_CLEAN), then shutdown_error_log is checked.  Differences:
a zombie nginx counts as stopped (PID 1 may reap slowly in containers),
and an nginx that does not start fails the block (with the error.log tail)
instead of bailing out after 30 s of retries.

Not supported: HUP reloads, valgrind/stap/check-leak/benchmark modes,
HTTP/2 and HTTP/3 (curl), tcp_listen/udp_listen servers, todo, must_die.

=cut
