// Package openwrt is carpd's OpenWrt glue: it reads carpd's configuration in
// OpenWrt's UCI file format (/etc/config/carpd), the format of libuci's file
// backend (openwrt/uci file.c, list.c) and of the OpenWrt "UCI system"
// documentation; it runs hotplug-call on CARP transitions; and it resolves
// OpenWrt network names (lan, wan) to devices through netifd over ubus.
//
// The parser and the mapping are pure: no logging, no globals, and apart
// from LoadConfig no I/O. The hotplug runner and the network resolution are
// not: Hotplug logs and spawns processes, ResolveInterface asks the kernel
// and ubus.
//
// The parser has two layers:
//
//   - ParseUCI turns bytes into a File of Sections and Options, following
//     libuci's parser rule for rule, and File.format writes a File back the
//     way `uci commit` does. This layer knows nothing about carpd.
//   - ParseConfig and LoadConfig map a File onto config.Config, report
//     values that are wrong with file, line and option, and run
//     config.Validate.
//
// Layout:
//
//	uci.go       ParseUCI, File.format: the UCI syntax (pure)
//	config.go    ParseConfig, LoadConfig, MapConfig: sections carpd and vhid (pure)
//	sync.go      the sync section (pure)
//	track.go     the track sections and a vhid's list group (pure)
//	trackrun.go  RunProgram: a tracker's script through runCombined
//	errors.go    ParseError, ConfigError
//	hotplug.go   Hotplug: runs hotplug-call carp on its own goroutine, in order,
//	             each run bounded by a timeout
//	run.go       runCombined: starts a program with a fixed environment and
//	             collects its output (what os/exec would do, smaller)
//	netifd.go    ResolveInterface: device names and OpenWrt network names
//
// # Syntax
//
// A file is a list of statements, one per line or separated by ';':
//
//	package <name>                 (accepted and ignored)
//	config <type> ['<name>']       (opens a section)
//	option <name> '<value>'        (sets a single value)
//	list <name> '<value>'          (appends to a list; repeatable)
//
// Like uci, the keywords may be abbreviated to p, c, o and l. A word is a
// run of bare characters, 'single-quoted' text (no escapes) and
// "double-quoted" text (a backslash takes the next character literally),
// glued together. So all of these set the value it's:
//
//	option a 'it'\''s'     # uci's own idiom: close, escaped quote, reopen
//	option a "it's"
//	option a it\'s
//
// Quoted text may span lines. '#' outside quotes starts a comment that runs
// to the end of the line.
// Section and option names are [A-Za-z0-9_]; section types are printable
// ASCII without spaces. Control characters other than tab, CR and LF are
// rejected anywhere in the file.
//
// # libuci quirks that ParseUCI reproduces
//
//   - Backslash escapes are not C escapes: "\n" is the letter n. A backslash
//     also escapes outside quotes (a\ b is "a b"), and a backslash at the end
//     of a line (outside single quotes) joins the next line.
//   - An option given an empty value ("") is ignored: it neither creates the
//     option nor clears an earlier value. An empty list item is kept.
//   - Setting an option again replaces its value in place (the option keeps
//     its position). A list after an option of the same name turns the
//     option into a list with the old value first; an option after a list
//     replaces the whole list.
//   - A second `config` with the name of an existing section reopens that
//     section (same type) or is an error (different type).
//   - Anonymous sections are named "cfg%02x%04x": the 1-based number of the
//     section in the file, then the low 16 bits of the djb hash (h = h*33 + c,
//     starting at 5381, masked to 31 bits) of the section type. This is
//     exactly libuci's scheme (its hash would also cover the options, but it
//     names the section before any option is read), so the names match what
//     `uci show -X` prints, e.g. cfg01e48a for a first `config system`.
//   - Extra arguments are an error (libuci's default strict mode).
//
// # Where ParseUCI differs from libuci
//
//   - ';' always ends a statement. libuci drops the rest of the line after an
//     unquoted word that is directly followed by ';' (in "option a b;option
//     c d" the second statement is lost) and rejects `config t ; option ...`
//     with "too many arguments". Files written by uci never contain ';'.
//   - Keywords must be followed by a space or tab in libuci ("config" alone on
//     a line is "invalid command"); here it is "missing section type".
//   - An unterminated quote is reported at the line where the quote opens,
//     not at the end of the file.
//
// # carpd sections
//
//	config carpd 'global'
//		option preempt '1'            # bool, default 0
//		option log_level 'info'       # debug, info, warn, error
//		option control_socket '/var/run/carpd.sock'
//		option demote_to_skew '0'     # bool
//		option state_file ''          # path, empty for none
//
//	config vhid 'lan'                 # the section name is the vhid's name
//		option enabled '1'            # bool, default 1; 0 skips the section
//		option interface 'br-lan'     # required
//		option vhid '1'               # 1-255, required
//		option advbase '1'            # 0-255, default 1
//		option advskew '0'            # 0-254, default 0
//		option password 'secret'      # at most 19 bytes
//		list address '192.168.1.1/24' # or a bare address for /32, /128
//		list peer '192.168.1.3'       # unicast adverts to each peer
//		option preempt '1'            # overrides the global preempt
//
// Four section types: carpd (the global section, at most one, shown
// above with its main options), vhid (one per virtual host), sync
// (connection-state sync, at most one) and track (trackers, each named):
//
//	config sync 'sync'
//		option interface 'eth2'       # the dedicated sync link; required
//		option peer '10.254.0.2'      # or option group for multicast
//		option key '...'              # 64 hex digits or a strong passphrase
//
//	config track 'wan_ping'           # the name is the demotion source
//		option type 'ping'            # ping|interface|script|file|process
//		list target '198.51.100.1'
//		option device 'wan'           # probe out of this device or network
//
// Every option of every section, its type, default and validation, is
// listed in docs/uci.md, which internal/docscheck keeps in step with the
// option switches of config.go, sync.go and track.go.
//
// Booleans are spelled as uci spells them: 1, yes, on, true, enabled and 0,
// no, off, false, disabled. Unknown sections and unknown options produce
// warnings, never errors, so that a typo shows up in the log without
// stopping the daemon.
package openwrt
