// Package sqlitestore is the authority's member and ticket store in an embedded SQLite file,
// the default for a hub. Several processes may open the same file; RedeemTicket stays
// atomic across them.
//
// It is storage only: what members and tickets mean is the authority package's business.
// For a store shared by hubs on several machines, use pgstore.
package sqlitestore
