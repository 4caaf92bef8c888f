package balance

import (
	"bytes"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpf(2) commands and types (linux/bpf.h).
const (
	bpfMapCreate     = 0
	bpfMapUpdateElem = 2
	bpfProgLoad      = 5
	bpfProgTestRun   = 10

	bpfMapTypeArray     = 2
	bpfProgTypeSchedCls = 3
	progLicense         = "BSD\x00" // the program calls no GPL-only helper
	verifierLogSize     = 1 << 16
	maxProgramBytes     = 8 * 128
	progName            = "carpd_balance"
	attrSize            = 128 // larger than every attribute used; the tail is zero
)

func bpfCall(cmd uintptr, attr unsafe.Pointer) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), attrSize)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// newMaskMap creates an array map of one 32-bit value.
func newMaskMap() (int, error) {
	var attr struct {
		mapType, keySize, valueSize, maxEntries uint32
		_                                       [attrSize - 16]byte
	}
	attr.mapType, attr.keySize, attr.valueSize, attr.maxEntries = bpfMapTypeArray, 4, 4, 1
	fd, err := bpfCall(bpfMapCreate, unsafe.Pointer(&attr))
	if err != nil {
		return -1, fmt.Errorf("balance: bpf map: %w", err)
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// setMapMask stores mask in the map: one bpf(2) call, atomic for the
// program, which reads the value once per packet.
func setMapMask(mapFD int, mask uint32) error {
	key := uint32(0)
	var attr struct {
		mapFD      uint32
		_          uint32
		key, value uint64
		flags      uint64
		_          [attrSize - 32]byte
	}
	attr.mapFD = uint32(mapFD)
	attr.key = uint64(uintptr(unsafe.Pointer(&key)))
	attr.value = uint64(uintptr(unsafe.Pointer(&mask)))
	_, err := bpfCall(bpfMapUpdateElem, unsafe.Pointer(&attr))
	runtime.KeepAlive(&key)
	runtime.KeepAlive(&mask)
	return err
}

// loadProgram loads insns as a tc classifier. When the verifier refuses
// it, the error carries the end of the verifier's log.
func loadProgram(insns []byte) (int, error) {
	if len(insns) == 0 || len(insns)%8 != 0 || len(insns) > maxProgramBytes {
		return -1, fmt.Errorf("balance: program of %d bytes", len(insns))
	}
	fd, err := progLoad(insns, nil)
	if err == nil {
		unix.CloseOnExec(fd)
		return fd, nil
	}
	log := make([]byte, verifierLogSize)
	if _, err2 := progLoad(insns, log); err2 != nil {
		log = bytes.TrimRight(log, "\x00")
		if len(log) > 512 {
			log = log[len(log)-512:]
		}
		return -1, fmt.Errorf("balance: load program: %w: %s", err, log)
	}
	return -1, fmt.Errorf("balance: load program: %w", err)
}

func progLoad(insns, log []byte) (int, error) {
	license := []byte(progLicense)
	var attr struct {
		progType, insnCnt  uint32
		insns, license     uint64
		logLevel, logSize  uint32
		logBuf             uint64
		kernVersion, flags uint32
		name               [16]byte
		_                  [attrSize - 64]byte
	}
	attr.progType = bpfProgTypeSchedCls
	attr.insnCnt = uint32(len(insns) / 8)
	attr.insns = uint64(uintptr(unsafe.Pointer(&insns[0])))
	attr.license = uint64(uintptr(unsafe.Pointer(&license[0])))
	copy(attr.name[:15], progName)
	if log != nil {
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
	}
	fd, err := bpfCall(bpfProgLoad, unsafe.Pointer(&attr))
	runtime.KeepAlive(insns)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	return fd, err
}

// attachTCX attaches the program to the interface's tcx ingress hook by a
// BPF link and returns the link. Kernels before 6.6 refuse the attach type
// with EINVAL.
func attachTCX(progFD, ifindex int) (int, error) {
	var attr struct {
		progFD, ifindex, attachType, flags uint32
		_                                  [attrSize - 16]byte
	}
	attr.progFD, attr.ifindex, attr.attachType = uint32(progFD), uint32(ifindex), unix.BPF_TCX_INGRESS
	fd, err := bpfCall(unix.BPF_LINK_CREATE, unsafe.Pointer(&attr))
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// testRun runs the loaded program once on frame (BPF_PROG_TEST_RUN) and
// returns its verdict: for tests of the program against the pure rule.
func testRun(progFD int, frame []byte) (int32, error) {
	var attr struct {
		progFD, retval          uint32
		dataSizeIn, dataSizeOut uint32
		dataIn, dataOut         uint64
		repeat, duration        uint32
		_                       [attrSize - 40]byte
	}
	attr.progFD = uint32(progFD)
	attr.dataSizeIn = uint32(len(frame))
	attr.dataIn = uint64(uintptr(unsafe.Pointer(&frame[0])))
	attr.repeat = 1
	_, err := bpfCall(bpfProgTestRun, unsafe.Pointer(&attr))
	runtime.KeepAlive(frame)
	return int32(attr.retval), err
}
