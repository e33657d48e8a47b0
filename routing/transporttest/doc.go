// Package transporttest is an in-memory routing.Transport for tests: transports on one
// Network reach each other's listeners by name, with the Guarantees a test gives them, so a
// test can run routers, secure channels and portals over a transport that is not TCP, and
// over one that promises less than TCP (as a datagram transport will). It proves the plug:
// nothing above routing may need more of a transport than the routing.Transport contract.
//
// It is not for production: it keeps no caps beyond the frame size and its queues are
// unbounded.
package transporttest
