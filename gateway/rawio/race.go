//go:build race

package rawio

// raceEnabled: see Wrap.
const raceEnabled = true
