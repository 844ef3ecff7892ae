package strategy

// USR2 uses Gunicorn's own USR2 re-exec, then TERM to the old master.
const USR2 Strategy = "usr2"

var usr2 = Info{
	Name:     USR2,
	Summary:  "Gunicorn's own USR2 re-exec of the serving master, then TERM to the old master",
	Kinds:    []string{"gunicorn"},
	ReExec:   true,
	Fallback: Swap,
}
