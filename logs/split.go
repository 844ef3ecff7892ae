package logs

import "bytes"

// splitter cuts a byte stream into lines of at most max bytes. A longer line
// comes out as numbered pieces (see Line.Part); an unterminated last line is
// emitted by flush.
type splitter struct {
	max   int
	carry []byte // the pending, unterminated line (at most max bytes)
	part  int    // pieces of the pending line already emitted
}

// emitFunc receives one line or piece; text is only valid during the call.
type emitFunc func(text []byte, part int, more bool)

// keepCarry is the capacity above which the pending-line buffer is freed
// once its line ends, so that one long line does not pin memory for good.
const keepCarry = 4 << 10

// feed consumes p, emitting every line it completes and every full piece of
// a line longer than max.
func (s *splitter) feed(p []byte, emit emitFunc) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.hold(p, emit)
			return
		}
		if len(s.carry) == 0 && s.part == 0 && i <= s.max {
			emit(p[:i], 0, false)
		} else {
			s.hold(p[:i], emit)
			s.end(emit)
		}
		p = p[i+1:]
	}
}

// flush emits the pending unterminated line, if any (at EOF).
func (s *splitter) flush(emit emitFunc) {
	if len(s.carry) > 0 || s.part > 0 {
		s.end(emit)
	}
}

// hold appends p to the pending line, emitting a piece of max bytes whenever
// the pending line grows beyond max.
func (s *splitter) hold(p []byte, emit emitFunc) {
	for len(s.carry)+len(p) > s.max {
		take := s.max - len(s.carry)
		s.carry = append(s.carry, p[:take]...)
		s.part++
		emit(s.carry, s.part, true)
		s.carry = s.carry[:0]
		p = p[take:]
	}
	s.carry = append(s.carry, p...)
}

// end emits the pending line as a whole line, or as the last piece when
// pieces of it were emitted already, and resets the splitter.
func (s *splitter) end(emit emitFunc) {
	part := 0
	if s.part > 0 {
		part = s.part + 1
	}
	emit(s.carry, part, false)
	s.part = 0
	s.carry = s.carry[:0]
	if cap(s.carry) > keepCarry {
		s.carry = nil
	}
}
