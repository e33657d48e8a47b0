package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/routing"
)

// peerCheckListener admits only connections from this node's own user (or root), and from
// members of the config's api_socket group when there is one: the socket mode already says
// so, and this holds even if someone loosens the mode.
type peerCheckListener struct {
	*net.UnixListener
	group *atomic.Int64 // -1: no group
}

func (l *peerCheckListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if peerAllowed(c, l.group.Load()) {
			return c, nil
		}
		c.Close()
	}
}

func peerAllowed(c *net.UnixConn, group int64) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var groups []uint32
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil && group >= 0 {
			groups = peerGroups(int(fd))
		}
	})
	if err != nil {
		return false
	}
	if cred.Uid == uint32(os.Getuid()) || cred.Uid == 0 {
		return true
	}
	return group >= 0 && (cred.Gid == uint32(group) || slices.Contains(groups, uint32(group)))
}

func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	// Profiles of the running node, for `go tool pprof` through the owner-only socket.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /v1/node", func(w http.ResponseWriter, r *http.Request) {
		reply(w, n.info(), nil)
	})
	mux.HandleFunc("POST /v1/node/stop", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, nil)
		n.stop()
	})
	mux.HandleFunc("POST /v1/messages", func(w http.ResponseWriter, r *http.Request) {
		var req api.SendMessage
		if !decode(w, r, &req) {
			return
		}
		p, err := n.SendMessage(r.Context(), req.To, req.Payload, req.Timeout)
		reply(w, api.MessageReply{Payload: p}, err)
	})
	mux.HandleFunc("GET /v1/identities", func(w http.ResponseWriter, r *http.Request) {
		ids, err := n.ids.list(r.Context(), r.URL.Query().Get("full") != "")
		reply(w, ids, err)
	})
	mux.HandleFunc("GET /v1/identities/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if name == "-" {
			name = "" // the node's own
		}
		id, err := n.ids.show(r.Context(), name, r.URL.Query().Get("full") != "")
		reply(w, id, err)
	})
	mux.HandleFunc("POST /v1/identities", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateIdentity
		if !decode(w, r, &req) {
			return
		}
		rec, err := n.ids.create(r.Context(), req.Name)
		if err != nil {
			reply(w, nil, &statusError{http.StatusBadRequest, err})
			return
		}
		reply(w, n.ids.info(rec, false), nil)
	})
	mux.HandleFunc("POST /v1/identities/{name}/rotate", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if name == "-" {
			name = "" // the node's own
		}
		rec, err := n.rotator.rotateIdentity(r.Context(), name)
		if err != nil {
			reply(w, api.Identity{}, err)
			return
		}
		reply(w, n.ids.info(rec, false), nil)
	})
	mux.HandleFunc("POST /v1/secure-channels", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateChannel
		if !decode(w, r, &req) {
			return
		}
		c, err := n.createChannel(r.Context(), req)
		reply(w, c, err)
	})
	mux.HandleFunc("GET /v1/secure-channels", func(w http.ResponseWriter, r *http.Request) {
		var out []api.Channel
		for _, c := range n.channels.list() {
			out = append(out, channelInfo(c))
		}
		reply(w, out, nil)
	})
	mux.HandleFunc("DELETE /v1/secure-channels/{address}", func(w http.ResponseWriter, r *http.Request) {
		addr := strings.TrimPrefix(r.PathValue("address"), "/service/")
		c := n.channels.get(addr)
		if c == nil {
			reply(w, nil, &statusError{http.StatusNotFound, fmt.Errorf("no secure channel %s; see: adjacent secure-channel list", addr)})
			return
		}
		c.Close()
		reply(w, struct{}{}, nil)
	})
	mux.HandleFunc("POST /v1/project", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateProject
		if !decode(w, r, &req) {
			return
		}
		p, err := n.createProject(r.Context(), req)
		reply(w, p, badRequest(err))
	})
	mux.HandleFunc("GET /v1/project", func(w http.ResponseWriter, r *http.Request) {
		if n.project.Load() == nil {
			reply(w, nil, notFound(errNoProject))
			return
		}
		reply(w, n.projectInfo(), nil)
	})
	mux.HandleFunc("POST /v1/project/tickets", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateTicket
		if !decode(w, r, &req) {
			return
		}
		t, err := n.createTicket(r.Context(), req)
		reply(w, t, err)
	})
	mux.HandleFunc("GET /v1/project/members", func(w http.ResponseWriter, r *http.Request) {
		var ms []api.Member
		err := n.authorityCall(r.Context(), hub.MemberList{}, &ms)
		reply(w, ms, err)
	})
	mux.HandleFunc("POST /v1/project/members", func(w http.ResponseWriter, r *http.Request) {
		var req api.Member
		if !decode(w, r, &req) {
			return
		}
		id, err := identity.ParseIdentifier(req.Identifier)
		if err != nil {
			reply(w, nil, &statusError{http.StatusBadRequest, fmt.Errorf("member add: %w", err)})
			return
		}
		err = n.authorityCall(r.Context(), hub.MemberAdd{Member: id, Attributes: req.Attributes}, nil)
		reply(w, struct{}{}, err)
	})
	mux.HandleFunc("DELETE /v1/project/members/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := identity.ParseIdentifier(r.PathValue("id"))
		if err != nil {
			reply(w, nil, &statusError{http.StatusBadRequest, fmt.Errorf("member delete: %w", err)})
			return
		}
		var d api.MemberDeleted
		err = n.authorityCall(r.Context(), hub.MemberDelete{Member: id}, &d)
		reply(w, d, err)
	})
	mux.HandleFunc("POST /v1/enroll", func(w http.ResponseWriter, r *http.Request) {
		var req api.Enroll
		if !decode(w, r, &req) {
			return
		}
		p, err := n.enroll(r.Context(), req.Ticket)
		reply(w, p, badRequest(err))
	})
	mux.HandleFunc("GET /v1/credential", func(w http.ResponseWriter, r *http.Request) {
		c, err := n.project.credentialInfo()
		reply(w, c, badRequest(err))
	})
	mux.HandleFunc("POST /v1/relays", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateRelay
		if !decode(w, r, &req) {
			return
		}
		rl, err := n.createRelay(r.Context(), req.Name)
		reply(w, rl, badRequest(err))
	})
	mux.HandleFunc("GET /v1/relays", func(w http.ResponseWriter, r *http.Request) {
		rs, err := n.listRelays(r.Context())
		reply(w, rs, badRequest(err))
	})
	mux.HandleFunc("DELETE /v1/relays/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		err := n.callHub(r.Context(), relaysWorker, hub.RelayDelete{Name: name}, nil)
		if err == nil {
			err = n.state.DeleteRelay(r.Context(), name)
		}
		reply(w, struct{}{}, badRequest(err))
	})
	mux.HandleFunc("POST /v1/policies", func(w http.ResponseWriter, r *http.Request) {
		var req api.Policy
		if !decode(w, r, &req) {
			return
		}
		p, err := n.setPolicy(r.Context(), req.Kind, req.Resource, req.Expression)
		if err == nil {
			req.Expression = p.String()
		}
		reply(w, req, badRequest(err))
	})
	mux.HandleFunc("GET /v1/policies", func(w http.ResponseWriter, r *http.Request) {
		ps, err := n.state.Policies(r.Context())
		out := make([]api.Policy, 0, len(ps))
		for _, p := range ps {
			out = append(out, api.Policy(p))
		}
		reply(w, out, err)
	})
	mux.HandleFunc("POST /v1/outlets", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateOutlet
		if !decode(w, r, &req) {
			return
		}
		o, err := n.createOutlet(r.Context(), req)
		reply(w, o, badRequest(err))
	})
	mux.HandleFunc("GET /v1/outlets", func(w http.ResponseWriter, r *http.Request) {
		reply(w, n.portals.outletList(), nil)
	})
	mux.HandleFunc("DELETE /v1/outlets/{name}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, badRequest(n.deleteOutlet(r.Context(), r.PathValue("name"))))
	})
	mux.HandleFunc("POST /v1/inlets", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateInlet
		if !decode(w, r, &req) {
			return
		}
		in, err := n.createInlet(r.Context(), req)
		reply(w, in, badRequest(err))
	})
	mux.HandleFunc("GET /v1/inlets", func(w http.ResponseWriter, r *http.Request) {
		reply(w, n.portals.inletList(), nil)
	})
	mux.HandleFunc("DELETE /v1/inlets/{name}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, badRequest(n.deleteInlet(r.Context(), r.PathValue("name"))))
	})
	n.configHandlers(mux)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, n.config.markOrigin(n.status(r.Context())), nil)
	})
	return mux
}

// badRequest marks an error the caller can fix as a 400; nil stays nil.
func badRequest(err error) error {
	var se *statusError
	if err == nil || errors.As(err, &se) {
		return err
	}
	return &statusError{http.StatusBadRequest, err}
}

// notFound marks err as a 404.
func notFound(err error) error { return &statusError{http.StatusNotFound, err} }

func (n *Node) info() api.NodeInfo {
	rs, ts := n.router.Stats(), n.router.Transport(routing.TypeTCP).Stats()
	return api.NodeInfo{
		Home:       n.cfg.Home.Dir,
		Pid:        os.Getpid(),
		Identifier: string(n.self.history.Identifier()),
		Started:    n.started,
		Listen:     n.listenAddrs(),
		Router:     api.Counters{Delivered: rs.Delivered, Denied: rs.Denied, Unroutable: rs.Unroutable, Refused: rs.Refused},
		Transport: api.Transport{
			Connections: ts.Connections, FramesIn: ts.FramesIn, FramesOut: ts.FramesOut,
			BytesIn: ts.BytesIn, BytesOut: ts.BytesOut, Refused: ts.Refused,
		},
	}
}

// maxRequest bounds an API request body.
const maxRequest = 1 << 20

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		reply(w, nil, &statusError{http.StatusBadRequest, fmt.Errorf("bad request: %w", err)})
		return false
	}
	return true
}

// statusError carries an HTTP status with an error.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := http.StatusInternalServerError
		var se *statusError
		if errors.As(err, &se) {
			status = se.status
		} else if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(api.Error{Error: err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}
