package pgstore

import (
	"context"
	"net"
	"sync"

	"github.com/jackc/pgx/v5"
)

// pool is a small bounded pool of pgx connections. (pgx's own pgxpool would need another
// module; the store needs little.) Connections are made on demand, up to max at once.
type pool struct {
	cfg  *pgx.ConnConfig
	sem  chan struct{}  // one token per connection in use
	idle chan *pgx.Conn // at most max

	mu     sync.Mutex
	closed bool
}

func newPool(cfg *pgx.ConnConfig, max int) *pool {
	return &pool{cfg: cfg, sem: make(chan struct{}, max), idle: make(chan *pgx.Conn, max)}
}

// acquire returns a connection for the caller's sole use until release.
func (p *pool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		<-p.sem
		return nil, net.ErrClosed
	}
	for {
		select {
		case c := <-p.idle:
			if c.IsClosed() {
				continue
			}
			return c, nil
		default:
		}
		c, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			<-p.sem
			return nil, err
		}
		return c, nil
	}
}

// release gives c back. A connection that is closed, busy or inside a transaction (after a
// cancelled or failed call) is closed instead of kept.
func (p *pool) release(c *pgx.Conn) {
	defer func() { <-p.sem }()
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := c.PgConn()
	if p.closed || c.IsClosed() || pc.IsBusy() || pc.TxStatus() != 'I' {
		c.Close(context.Background())
		return
	}
	p.idle <- c // never blocks: at most max connections exist
}

// close closes the idle connections; connections in use are closed on release.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for {
		select {
		case c := <-p.idle:
			c.Close(context.Background())
		default:
			return
		}
	}
}
