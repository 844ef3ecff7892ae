package logs

// Recent returns the most recent lines held, oldest first, whose texts
// total at most maxBytes (at least the newest line when there is one): what
// a self-upgrade hands to the next image (see Preload) so that the history
// of `supctl logs` survives it.
func (a *App) Recent(maxBytes int) []Line {
	r := a.ring
	r.mu.Lock()
	defer r.mu.Unlock()
	total, first := 0, r.n
	for i := r.n - 1; i >= 0; i-- {
		total += len(r.buf[(r.head+i)%len(r.buf)].Text)
		if total > maxBytes && first < r.n {
			break
		}
		first = i
	}
	out := make([]Line, 0, r.n-first)
	for i := first; i < r.n; i++ {
		out = append(out, r.buf[(r.head+i)%len(r.buf)])
	}
	return out
}

// Preload appends lines (oldest first, as Recent returns them) to the ring
// as history; called before the first Attach, they precede every line this
// App captures. They reach neither the sink (the image that read them wrote
// them) nor followers. The ring's bound applies; each line's App is set to
// this App's name.
func (a *App) Preload(lines []Line) {
	r := a.ring
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range lines {
		l.App = a.name
		r.push(l)
	}
}
