// Package pgstore is the authority's member and ticket store in PostgreSQL, for hubs that
// outgrow one machine: several hub processes may share one database, and RedeemTicket stays
// atomic across them. Open creates the schema adjacent_authority if it is missing and
// migrates it, recording its version in adjacent_authority.schema_version.
//
// It is storage only: what members and tickets mean is the authority package's business.
// It speaks to PostgreSQL with pgx directly, through a small pool of its own.
package pgstore
