package ipk

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"
)

// Target is what an OpenWrt architecture name requires of an ELF binary.
type Target struct {
	Machine elf.Machine
	Order   binary.ByteOrder
	Class   elf.Class
	// SoftFloat: the binary must not use the FPU. Required for every
	// 32-bit MIPS target: most have no FPU and OpenWrt kernels lack the
	// FPU emulator; on the few with one (mipsel_24kc_24kf) softfloat is
	// still safe (docs/packaging.md#targets).
	SoftFloat bool
}

// TargetOf maps an OpenWrt architecture (packages directory name) to the
// ELF it needs. Only the families Go can build for are known.
func TargetOf(arch string) (Target, error) {
	le, be := binary.ByteOrder(binary.LittleEndian), binary.ByteOrder(binary.BigEndian)
	for _, t := range []struct {
		prefix string
		t      Target
	}{
		{"mipsel_", Target{elf.EM_MIPS, le, elf.ELFCLASS32, true}},
		{"mips_", Target{elf.EM_MIPS, be, elf.ELFCLASS32, true}},
		{"arm_", Target{elf.EM_ARM, le, elf.ELFCLASS32, false}},
		{"aarch64_", Target{elf.EM_AARCH64, le, elf.ELFCLASS64, false}},
		{"x86_64", Target{elf.EM_X86_64, le, elf.ELFCLASS64, false}},
		{"i386_", Target{elf.EM_386, le, elf.ELFCLASS32, false}},
		{"riscv64_", Target{elf.EM_RISCV, le, elf.ELFCLASS64, false}},
		{"loongarch64_", Target{elf.EM_LOONGARCH, le, elf.ELFCLASS64, false}},
	} {
		if arch == t.prefix || (strings.HasSuffix(t.prefix, "_") && strings.HasPrefix(arch, t.prefix)) {
			return t.t, nil
		}
	}
	return Target{}, fmt.Errorf("ipk: unknown OpenWrt architecture %q", arch)
}

// BinaryInfo describes an ELF executable.
type BinaryInfo struct {
	Machine elf.Machine
	Order   binary.ByteOrder
	Class   elf.Class
	Flags   uint32 // e_flags
	Static  bool   // no PT_INTERP, no PT_DYNAMIC
	// MIPSFPABI is fp_abi of .MIPS.abiflags (1 double, 3 soft, …), -1
	// when there is none.
	MIPSFPABI int
	// FPUInstructions counts MIPS coprocessor-1 instructions in .text
	// (lwc1/swc1/ldc1/sdc1, every COP1 and COP1X op such as mtc1 or
	// add.d, and movf/movt). A soft-float binary has none; on a CPU
	// without FPU (and OpenWrt kernels without the FPU emulator) the
	// first one kills the process with SIGILL.
	FPUInstructions int
}

// MIPSFPABISoft is the .MIPS.abiflags fp_abi value of a soft-float object
// (binutils' Val_GNU_MIPS_ABI_FP_SOFT).
const MIPSFPABISoft = 3

// InspectBinary reads what TargetOf's checks need from an ELF file.
func InspectBinary(bin []byte) (*BinaryInfo, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("ipk: not an ELF file: %w", err)
	}
	defer f.Close()
	info := &BinaryInfo{Machine: f.Machine, Order: f.ByteOrder, Class: f.Class, Static: true, MIPSFPABI: -1}
	if off := map[elf.Class]int{elf.ELFCLASS32: 0x24, elf.ELFCLASS64: 0x30}[f.Class]; off > 0 && len(bin) >= off+4 {
		info.Flags = f.ByteOrder.Uint32(bin[off:]) // e_flags; debug/elf does not expose it
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			info.Static = false
		}
	}
	if f.Machine != elf.EM_MIPS {
		return info, nil
	}
	if s := f.Section(".MIPS.abiflags"); s != nil {
		d, err := s.Data()
		if err != nil || len(d) < 24 {
			return nil, fmt.Errorf("ipk: bad .MIPS.abiflags: %v", err)
		}
		// version u16, isa_level, isa_rev, gpr_size, cpr1_size, cpr2_size, fp_abi u8, …
		info.MIPSFPABI = int(d[7])
	}
	text := f.Section(".text")
	if text == nil {
		return nil, fmt.Errorf("ipk: no .text section")
	}
	d, err := text.Data()
	if err != nil {
		return nil, err
	}
	for i := 0; i+4 <= len(d); i += 4 {
		w := f.ByteOrder.Uint32(d[i:])
		switch op := w >> 26; op {
		case 0x11, 0x13, 0x31, 0x35, 0x39, 0x3d: // COP1, COP1X, LWC1, LDC1, SWC1, SDC1
			info.FPUInstructions++
		case 0:
			if w&0x3f == 0x01 { // SPECIAL/MOVCI: movf, movt read the FP condition codes
				info.FPUInstructions++
			}
		}
	}
	return info, nil
}

// CheckBinary verifies that bin is a static executable for the OpenWrt
// architecture arch: ELF machine, class, byte order, EABI 5 on ARM and,
// where the target needs it, soft float (fp_abi soft and not one FPU
// instruction). Go's ELF header says nothing about MIPS float: e_flags is
// 0x50001004 for softfloat and hardfloat alike; .MIPS.abiflags does.
func CheckBinary(arch string, bin []byte) (*BinaryInfo, error) {
	t, err := TargetOf(arch)
	if err != nil {
		return nil, err
	}
	info, err := InspectBinary(bin)
	if err != nil {
		return nil, err
	}
	switch {
	case info.Machine != t.Machine || info.Class != t.Class || info.Order != t.Order:
		return info, fmt.Errorf("ipk: binary is %v %v %v, %s needs %v %v %v",
			info.Machine, info.Class, info.Order, arch, t.Machine, t.Class, t.Order)
	case !info.Static:
		return info, fmt.Errorf("ipk: binary is dynamically linked; build with CGO_ENABLED=0")
	case t.Machine == elf.EM_ARM && info.Flags&0xff000000 != 0x05000000:
		return info, fmt.Errorf("ipk: ARM e_flags %#x: not EABI version 5", info.Flags)
	case t.SoftFloat && info.MIPSFPABI != MIPSFPABISoft:
		return info, fmt.Errorf("ipk: MIPS fp_abi is %d, not soft (%d): build with GOMIPS=softfloat", info.MIPSFPABI, MIPSFPABISoft)
	case t.SoftFloat && info.FPUInstructions > 0:
		return info, fmt.Errorf("ipk: %d FPU instructions in .text: build with GOMIPS=softfloat", info.FPUInstructions)
	}
	return info, nil
}
