package supervise

import (
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
)

// Reaper is the supervisor's only waiter for children (see proc.Reaper).
type Reaper = proc.Reaper

// Socket is a held listening socket (see listen.Socket).
type Socket = listen.Socket
