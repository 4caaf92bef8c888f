//go:build race

package carp

const raceEnabled = true
