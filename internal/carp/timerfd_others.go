//go:build !linux

package carp

import "errors"

func newSystemTimer() (Timer, func(), error) {
	return nil, nil, errors.New("no timerfd")
}
