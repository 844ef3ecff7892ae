# fish completion for supctl: `supctl completion fish`. App names come from
# the supervisor answering on the control socket.

function __supctl_apps
    set -l tokens (commandline -opc)
    set -l sock
    set -l i (contains -i -- -s $tokens)
    and set sock -s $tokens[(math $i + 1)]
    $tokens[1] $sock completion apps 2>/dev/null
end

complete -c supctl -f
complete -c supctl -n __fish_use_subcommand -a "@VERBS@"
complete -c supctl -n __fish_use_subcommand -o s -r -F -d 'control socket'
complete -c supctl -n __fish_use_subcommand -o timeout -x -d 'give up after this long'
complete -c supctl -n __fish_use_subcommand -l version -d 'print the version'
complete -c supctl -n __fish_use_subcommand -l help -d 'print the usage'
complete -c supctl -n '__fish_seen_subcommand_from @APPVERBS_SPACED@' -a '(__supctl_apps)'
complete -c supctl -n '__fish_seen_subcommand_from deploy' -a '(__fish_complete_directories)'
complete -c supctl -n '__fish_seen_subcommand_from status' -l json -d 'the control API answer'
complete -c supctl -n '__fish_seen_subcommand_from reload deploy' -l strategy -x -a '@STRATEGIES@'
complete -c supctl -n '__fish_seen_subcommand_from reload deploy' -l canary -x -d 'shares of new connections, e.g. 10%,50%'
complete -c supctl -n '__fish_seen_subcommand_from reload deploy' -l for -x -d 'each canary step, e.g. 60s'
complete -c supctl -n '__fish_seen_subcommand_from logs' -s n -x -d 'number of recent lines'
complete -c supctl -n '__fish_seen_subcommand_from logs' -s f -d 'follow live lines'
complete -c supctl -n '__fish_seen_subcommand_from logs' -l stderr -d 'stderr lines only'
complete -c supctl -n '__fish_seen_subcommand_from logs' -l since -x -d 'lines since a duration ago or a time'
complete -c supctl -n '__fish_seen_subcommand_from logs' -l reopen -d 'reopen the log files (logrotate)'
complete -c supctl -n '__fish_seen_subcommand_from top' -l interval -x -d 'time between refreshes'
complete -c supctl -n '__fish_seen_subcommand_from top' -l routes -x -a '(__supctl_apps)' -d 'slowest and failing routes of an app'
complete -c supctl -n '__fish_seen_subcommand_from errors' -l json -d 'the control API answer'
complete -c supctl -n '__fish_seen_subcommand_from errors' -s v -d 'full tracebacks'
complete -c supctl -n '__fish_seen_subcommand_from completion' -a '@SHELLS@'
