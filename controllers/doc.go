// Package controllers holds one reconciler per popconnect kind: FieldCatalog,
// PopulationGateway and AgencyConnection. Each reconciler computes the desired
// state with pure functions and applies it with server-side apply.
package controllers
