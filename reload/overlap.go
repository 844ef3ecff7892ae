package reload

import "context"

// Overlap runs a process app's new generation beside the old one: the steps
// of Swap (start, gate, commit, then stop old), for an app without
// Gunicorn's sockets to share.
func Overlap(ctx context.Context, h Host, old Gen, progress Progress) (Gen, error) {
	return Swap(ctx, h, old, progress)
}
