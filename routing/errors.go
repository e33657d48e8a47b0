package routing

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	ErrVersion      = errors.New("unsupported message version")
	ErrRouteTooLong = errors.New("route too long")
	ErrEmptyAddress = errors.New("empty address")
	ErrNoRoute      = errors.New("no route")
	ErrExists       = errors.New("address already registered")
	ErrClosed       = errors.New("router closed")
	ErrNotBack      = errors.New("return route does not start at the link the message came over")
)
