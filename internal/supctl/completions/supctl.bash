# bash completion for supctl: `supctl completion bash`.
# Completes commands, flags, strategies and the app names of the supervisor
# answering on the control socket (-s on the command line, $SUPCTL_SOCKET,
# or the default), which `supctl completion apps` lists.

_supctl_apps() {
	local i
	local -a sock=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} == -s ]]; then
			sock=(-s "${COMP_WORDS[i + 1]}")
		fi
	done
	"${COMP_WORDS[0]}" "${sock[@]}" completion apps 2>/dev/null
}

_supctl() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local i cmd="" npos=0 flags=""
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-s | -timeout | --strategy | --canary | --for | -n | --routes) ((i++)) ;;
		-*) ;;
		*) if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; else ((npos++)); fi ;;
		esac
	done
	case $prev in
	-s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	-timeout | -n) return ;;
	--strategy) COMPREPLY=($(compgen -W "@STRATEGIES@" -- "$cur")); return ;;
	--routes) COMPREPLY=($(compgen -W "$(_supctl_apps)" -- "$cur")); return ;;
	esac
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "@GLOBALFLAGS@" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "@VERBS@" -- "$cur"))
		fi
		return
	fi
	case $cmd in
	status) flags="--json" ;;
	reload | deploy) flags="--strategy --canary --for" ;;
	logs) flags="-n -f --stderr --since --reopen" ;;
	top) flags="--interval --routes" ;;
	errors) flags="-v --json" ;;
	completion)
		if ((npos == 0)); then COMPREPLY=($(compgen -W "@SHELLS@" -- "$cur")); fi
		return
		;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
		return
	fi
	case $cmd in
	@APPVERBS@)
		if ((npos == 0)); then
			COMPREPLY=($(compgen -W "$(_supctl_apps)" -- "$cur"))
		elif [[ $cmd == deploy ]] && ((npos == 1)); then
			COMPREPLY=($(compgen -d -- "$cur"))
		fi
		;;
	esac
}

complete -F _supctl supctl
