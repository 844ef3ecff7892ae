#compdef supctl
# zsh completion for supctl: `supctl completion zsh`. Install it as _supctl
# in $fpath, or `source <(supctl completion zsh)` after compinit. App names
# come from the supervisor answering on the control socket.

_supctl_apps() {
	local i
	local -a apps sock
	for ((i = 2; i < CURRENT; i++)); do
		[[ ${words[i]} == -s ]] && sock=(-s ${words[i+1]})
	done
	apps=(${(f)"$(${words[1]} $sock completion apps 2>/dev/null)"})
	compadd -a apps
}

_supctl() {
	local i cmd="" n=0
	local -a verbs
	verbs=(@VERBS@)
	for ((i = 2; i < CURRENT; i++)); do
		case ${words[i]} in
		-s|-timeout|--strategy|--canary|--for) ((i++)) ;;
		-*) ;;
		*) if [[ -z $cmd ]]; then cmd=${words[i]}; else ((n++)); fi ;;
		esac
	done
	case ${words[CURRENT-1]} in
	-s) _files; return ;;
	-timeout) return ;;
	--strategy) compadd @STRATEGIES@; return ;;
	esac
	if [[ -z $cmd ]]; then
		if [[ $PREFIX == -* ]]; then compadd -- @GLOBALFLAGS@; else compadd -a verbs; fi
		return
	fi
	if [[ $PREFIX == -* ]]; then
		case $cmd in
		status) compadd -- --json ;;
		reload|deploy) compadd -- --strategy --canary --for ;;
		logs) compadd -- -n -f --stderr --since --reopen ;;
		top) compadd -- --interval --routes ;;
		errors) compadd -- -v --json ;;
		esac
		return
	fi
	case $cmd in
	completion) (( n == 0 )) && compadd @SHELLS@ ;;
	@APPVERBS@)
		if (( n == 0 )); then
			_supctl_apps
		elif [[ $cmd == deploy ]] && (( n == 1 )); then
			_files -/
		fi
		;;
	esac
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
	_supctl "$@"
else
	compdef _supctl supctl
fi
