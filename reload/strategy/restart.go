package strategy

// Restart stops the old generation, then starts and checks a new one:
// never two at once (singletons such as celery beat), at the price of a gap.
const Restart Strategy = "restart"

var restart = Info{
	Name:       Restart,
	Summary:    "stop the serving generation, then start and gate the new one: never two at once",
	Kinds:      []string{"gunicorn", "process"},
	DefaultFor: []string{"process"},
	Exclusive:  true,
}
