#!/usr/bin/perl
# lint.pl: the source rules `make check` enforces (see docs/development.md).
#   1. banned functions (unbounded or unchecked: atoi, sprintf, strcpy, strtok, ...)
#   2. strtol and friends only with errno reset right before (so the result is checked)
#   3. every file descriptor is created close-on-exec
#   4. common/ never logs and never exits
#   5. each third-party library is included by exactly one module (a .c file, or a folder of
#      common/ whose .c files and private headers may include it, never its public headers)
#   6. module boundaries: a program folder (wrapper/, init/, operator/, broker/, cli/) includes
#      only common/ and itself; common/ includes only common/ (a contract two programs share
#      lives in common/, see docs/architecture.md)
# Usage: lint.pl FILE...   Prints "file:line: rule: text" for each violation; exits 1 if any.
use strict;
use warnings;

my @banned = qw(atoi atol atoll atof sprintf vsprintf strcpy strcat strncpy strncat strtok gets
                tmpnam tempnam mktemp system popen rand srand random asctime ctime gmtime localtime
                getenv_unsafe alloca setenv putenv);
# setenv/putenv: the wrapper builds the child's environment explicitly and never mutates its own.

my %only_in = (
    qr{<cjson/}              => qr{^common/json\.c$},
    qr{<curl/}               => qr{^common/http\.c$},
    qr{<wolfssl/}            => qr{^common/tls/([a-z0-9-]+\.c|wolf\.h)$},
    qr{<seccomp\.h>}         => qr{^common/sandbox(-[a-z]+)?\.c$},
    qr{<sys/capability\.h>}  => qr{^common/caps(-[a-z]+)?\.c$},
    qr{<yaml\.h>}            => qr{^common/yaml\.c$},
    qr{<http_parser\.h>}     => qr{^common/httpd-parser\.c$},
    qr{<llhttp\.h>}          => qr{^common/httpd-parser\.c$},
);

my $errors = 0;
sub violation {
    my ($file, $line, $rule, $text) = @_;
    $text =~ s/\s+/ /g;
    $text = substr($text, 0, 120);
    print "$file:$line: $rule: $text\n";
    $errors++;
}

for my $file (@ARGV) {
    open(my $fh, '<', $file) or die "lint: $file: $!\n";
    local $/;
    my $src = <$fh>;
    close $fh;

    # Blank out comments and string literals, keeping newlines so line numbers stay right.
    my $code = $src;
    $code =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')}{
        my $m = $1; my $keep = ($m =~ /^"/) ? '"' . ('_' x 0) . '"' : ''; (my $nl = $m) =~ s/[^\n]//g; $keep . $nl
    }gse;
    my $lineof = sub { my $pos = shift; return 1 + (substr($code, 0, $pos) =~ tr/\n//); };

    # 1. banned functions
    for my $fn (@banned) {
        while ($code =~ /(?<![\w.>])\Q$fn\E\s*\(/g) {
            violation($file, $lineof->($-[0]), "banned-function", "$fn()");
        }
    }

    # 2. strtol family: errno must be reset within the 3 previous lines
    my @lines = split /\n/, $code, -1;
    for my $i (0 .. $#lines) {
        next unless $lines[$i] =~ /(?<![\w.>])(strto(?:u?ll?|u?imax|d|f))\s*\(/;
        my $fn = $1;
        my $from = $i >= 3 ? $i - 3 : 0;
        my $window = join("\n", @lines[$from .. $i]);
        violation($file, $i + 1, "unchecked-strtol", "$fn() without 'errno = 0' just before")
            unless $window =~ /errno\s*=\s*0\s*;/;
    }

    # 3. close-on-exec for every descriptor-creating call
    my %cloexec = (
        'open'           => qr/O_CLOEXEC/,
        'openat'         => qr/O_CLOEXEC/,
        'socket'         => qr/SOCK_CLOEXEC/,
        'socketpair'     => qr/SOCK_CLOEXEC/,
        'accept4'        => qr/SOCK_CLOEXEC/,
        'pipe2'          => qr/O_CLOEXEC/,
        'memfd_create'   => qr/MFD_CLOEXEC/,
        'epoll_create1'  => qr/EPOLL_CLOEXEC/,
        'signalfd'       => qr/SFD_CLOEXEC/,
        'eventfd'        => qr/EFD_CLOEXEC/,
        'timerfd_create' => qr/TFD_CLOEXEC/,
        'inotify_init1'  => qr/IN_CLOEXEC/,
        'dup3'           => qr/O_CLOEXEC/,
    );
    for my $fn (keys %cloexec) {
        while ($code =~ /(?<![\w.>])\Q$fn\E\s*\(/g) {
            my $start = $-[0];
            # the argument list up to the matching parenthesis
            my $depth = 0; my $end = $+[0] - 1; my $args = '';
            for my $p ($end .. length($code) - 1) {
                my $c = substr($code, $p, 1);
                $depth++ if $c eq '(';
                $depth-- if $c eq ')';
                if ($depth == 0) { $args = substr($code, $end, $p - $end + 1); last; }
            }
            violation($file, $lineof->($start), "no-cloexec", "$fn$args")
                unless $args =~ $cloexec{$fn};
        }
    }
    for my $fn (qw(pipe accept dup epoll_create inotify_init)) {
        while ($code =~ /(?<![\w.>])\Q$fn\E\s*\(/g) {
            violation($file, $lineof->($-[0]), "no-cloexec", "$fn() cannot set close-on-exec; use the *2/*4/1 variant");
        }
    }
    while ($src =~ /(?<![\w.>])fopen\s*\([^;]*?,\s*"([^"]*)"/g) {
        violation($file, $lineof->($-[0]), "no-cloexec", "fopen mode \"$1\" without 'e'") unless $1 =~ /e/;
    }

    # 4. common/ never logs and never exits (abort() on memory corruption is allowed in secmem)
    if ($file =~ m{^common/.*\.c$} && $file ne "common/log.c") {
        while ($code =~ /(?<![\w.>])(log_\w+|printf|fprintf|puts|fputs|perror|syslog|exit|_exit|err|errx|warn|warnx)\s*\(/g) {
            my $fn = $1;
            next if $fn =~ /^log_\w+_(?:from|to)_string$/; # parsing a log setting is not logging
            next if $fn eq 'fprintf' && substr($code, $+[0], 40) !~ /^\s*std(err|out)/;
            next if $fn eq 'fputs' && substr($code, $-[0], 80) !~ /std(err|out)/;
            violation($file, $lineof->($-[0]), "common-logs", "$fn() in common/");
        }
    }

    # 5. third-party headers only in their one module
    while ($src =~ /^\s*#\s*include\s*(<[^>]+>)/mg) {
        my $inc = $1;
        for my $re (keys %only_in) {
            next unless $inc =~ $re;
            violation($file, $lineof->($-[0]), "third-party-include", "$inc outside its module")
                unless $file =~ $only_in{$re};
        }
    }

    # 6. module boundaries: #include "folder/..." only for common/ and the file's own folder
    if ($file =~ m{^(wrapper|init|operator|broker|cli|common)/}) {
        my $own = $1;
        while ($src =~ /^\s*#\s*include\s*"([^"\/]+)\/[^"]*"/mg) {
            my $dir = $1;
            next if $dir eq 'common' || $dir eq $own;
            violation($file, $lineof->($-[0]), "module-boundary",
                      "$own/ includes \"$dir/...\": only common/" . ($own eq 'common' ? '' : " and $own/"));
        }
    }
}

print "lint: $errors violation(s) in " . scalar(@ARGV) . " files\n" if $errors;
exit($errors ? 1 : 0);
