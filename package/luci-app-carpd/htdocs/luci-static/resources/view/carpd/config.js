'use strict';
'require view';
'require form';
'require ui';
'require uci';

/*
 * /etc/config/carpd as a form: the global section, a grid of vhids, the
 * trackers, the service roles and the sync section. The datatypes and checks mirror what `carpd check-config`
 * refuses (internal/openwrt/config.go, internal/openwrt/sync.go, internal/config/), so most mistakes
 * are caught before Save & Apply; carpd itself stays the judge.
 */

/* internal/ctsync/wire.KeyFromConfig: what makes a key or passphrase obviously weak. */
function weakPattern(s) {
	const distinct = new Set(s).size;

	if (distinct == 1)
		return _('repeats a single character');
	if (distinct < 6)
		return _('uses only %d different characters').format(distinct);

	for (let p = 2; p <= s.length / 2; p++) {
		let repeated = true;
		for (let i = p; i < s.length && repeated; i++)
			repeated = (s[i] === s[i - p]);
		if (repeated)
			return _('repeats a chunk of %d characters').format(p);
	}

	const step = s[1] - s[0];
	let run = (step == 1 || step == -1);
	for (let i = 2; run && i < s.length; i++)
		run = (s[i] - s[i - 1] == step);

	return run ? _('is a simple sequence') : null;
}

function validateKey(section_id, value) {
	const v = String(value || '').trim();

	if (/^[0-9a-fA-F]{64}$/.test(v)) {
		const raw = [];
		for (let i = 0; i < 64; i += 2)
			raw.push(parseInt(v.substr(i, 2), 16));
		const why = weakPattern(raw);
		return why ? _('The hex key %s.').format(why) : true;
	}

	const chars = Array.from(v).map((c) => c.codePointAt(0));
	if (chars.length < 16)
		return _('Expecting: 64 hex digits, or a passphrase of at least 16 characters');

	const why = weakPattern(chars);
	return why ? _('The passphrase %s.').format(why) : true;
}

/* A rate as tc(8) writes it (internal/openwrt/sync.go parseBandwidth). */
function validateBandwidth(section_id, value) {
	if (!value)
		return true;
	const m = /^([0-9]+(?:\.[0-9]+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps)?$/i.exec(value.trim());
	if (!m || +m[1] <= 0)
		return _('Expecting: a rate such as 256kbit, 1mbit or 100kbps');
	return true;
}

/* A Go duration ("200ms", "1m30s") or whole seconds. */
function validateDuration(section_id, value) {
	if (!value || /^[0-9]+$/.test(value) || /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/.test(value))
		return true;
	return _('Expecting: a duration such as 200ms, 30s or 5m (a bare number is seconds)');
}

function validateMark(section_id, value) {
	if (!value || /^(0x[0-9a-fA-F]{1,8}|[0-9]+)(\/(0x0*[1-9a-fA-F][0-9a-fA-F]{0,7}|[1-9][0-9]*))?$/.test(value))
		return true;
	return _('Expecting: a mark such as 0x10 or 0x10/0xff');
}

function isMulticast(a) {
	return /^(22[4-9]|23[0-9])\./.test(a) || /^ff/i.test(a);
}

/* A demotion group's name (internal/config ValidGroup): OpenBSD's interface group names. */
function validateGroup(section_id, value) {
	if (!value || /^[A-Za-z0-9_-]{1,15}$/.test(value))
		return true;
	return _('Expecting: a group name of 1-15 letters, digits, _ or -');
}

/*
 * A tracker's time (internal/openwrt parseSeconds): seconds with decimals
 * (1, 0.2) or a duration (200ms), more than 0 and at most an hour. In
 * seconds, or NaN.
 */
function seconds(value) {
	const v = String(value == null ? '' : value).trim();
	if (/^([0-9]+\.?[0-9]*|\.[0-9]+)$/.test(v))
		return +v;
	let total = 0, rest = v;
	const unit = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, 'µs': 1e-6, ns: 1e-9 };
	while (rest !== '') {
		const m = /^([0-9]+\.?[0-9]*|\.[0-9]+)(h|ms|m|s|us|µs|ns)/.exec(rest);
		if (!m)
			return NaN;
		total += m[1] * unit[m[2]];
		rest = rest.substr(m[0].length);
	}
	return v === '' ? NaN : total;
}

function validateSeconds(min, value) {
	if (!value)
		return true;
	const s = seconds(value);
	if (isNaN(s))
		return _('Expecting: seconds such as 1, 0.2 or 1.5 (or a duration such as 200ms)');
	if (s < min || s > 3600)
		return _('Expecting: at least %s and at most 3600 seconds').format(String(min));
	return true;
}

/*
 * A path carpd takes as it is (internal/config cleanAbs): absolute, no
 * empty, "." or ".." component, no trailing slash, no blank.
 */
function cleanAbs(v) {
	return /^\/[^\s]*$/.test(v) && v.length <= 255 && v.split('/').slice(1).every((c) => c != '' && c != '.' && c != '..');
}

/* A UCI package configuration sync copies (internal/config ValidPackage). */
function validateSyncPackage(section_id, value) {
	if (!value)
		return true;
	if (value == 'carpd')
		return _('Package carpd is never synced: its options are each router\'s own');
	return /^[a-z0-9_-]{1,64}$/.test(value) ? true : _('Expecting: a UCI package name (a-z, 0-9, _ and -)');
}

/*
 * A plain file configuration sync copies: the secondary writes it as root,
 * so it is held to /etc and kept out of carpd's own files (internal/config).
 */
function validateSyncFile(section_id, value) {
	if (!value)
		return true;
	if (!cleanAbs(value) || !value.startsWith('/etc/'))
		return _('Expecting: an absolute path under /etc/, without blanks, "." or ".."');
	if (value.startsWith('/etc/carpd/') || value == '/etc/config/carpd')
		return _('carpd\'s own files are never synced');
	return true;
}

/*
 * dnsmasq's lease file, which carpd rewrites as root on the backup: held to
 * /tmp and /var, where dnsmasq keeps it (/tmp/dhcp.leases on OpenWrt).
 */
function validateLeaseFile(section_id, value) {
	if (!value)
		return true;
	return (cleanAbs(value) && /^\/(tmp|var)\/./.test(value)) ? true : _('Expecting: an absolute path under /tmp/ or /var/');
}

/* Built-in demotion sources (and the global section): no tracker may take their name. */
const reservedNames = [ 'global', 'maintenance', 'manual', 'sync', 'sync_link', 'sync_bulk', 'send_errors' ];

return view.extend({
	render() {
		const m = new form.Map('carpd', _('CARP configuration'),
			_('Routers that share virtual IP addresses: every router of a group uses the same vhid, password and addresses; the one with the lowest advskew becomes master. Save & Apply reloads carpd without a flap of unchanged vhids.'));
		let s, o;

		/* config carpd 'global' */
		s = m.section(form.TypedSection, 'carpd', _('Global settings'));
		s.anonymous = true;
		s.addremove = false;

		o = s.option(form.Flag, 'enabled', _('Enable carpd'));
		o.default = o.enabled;
		o.rmempty = false;

		o = s.option(form.Flag, 'preempt', _('Preempt'),
			_('Take the virtual addresses back from a slower master when this router returns.'));
		o.default = o.disabled;

		o = s.option(form.Flag, 'demote_to_skew', _('Demote by advskew'),
			_('Also express demotion in the advertised advskew, for FreeBSD and ucarp peers.'));
		o.default = o.disabled;

		o = s.option(form.ListValue, 'log_level', _('Log level'));
		o.value('debug', _('Debug'));
		o.value('info', _('Info'));
		o.value('warn', _('Warning'));
		o.value('error', _('Error'));
		o.default = 'info';

		o = s.option(form.Value, 'hotplug_timeout', _('Hotplug timeout'),
			_('Seconds the /etc/hotplug.d/carp scripts may run for one transition.'));
		o.datatype = 'and(uinteger,range(1,255))';
		o.placeholder = '30';

		/*
		 * control_socket, state_file, ubus_socket and hotplug_call are not
		 * offered: they name files that carpd (root) replaces or runs, so
		 * they are set by root in the file, and carpd refuses paths outside
		 * its own (docs/openwrt-security.md).
		 */

		/* config vhid '<name>' */
		s = m.section(form.GridSection, 'vhid', _('Virtual hosts'),
			_('One row per virtual host (vhid) on an interface. The password and the addresses must be the same on every router of the group.'));
		s.addremove = true;
		s.anonymous = false;
		s.nodescriptions = true;

		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.default = o.enabled;
		o.rmempty = false;
		o.editable = true;

		o = s.option(form.Value, 'interface', _('Interface'), _('A device (br-lan) or an OpenWrt network (lan).'));
		o.datatype = 'netdevname';
		o.rmempty = false;
		o.editable = true;

		o = s.option(form.Value, 'vhid', _('VHID'));
		o.datatype = 'and(uinteger,range(1,255))';
		o.rmempty = false;
		o.editable = true;

		o = s.option(form.Value, 'advbase', _('Advbase'), _('Seconds between advertisements (0 with a non-zero advskew: sub-second).'));
		o.datatype = 'and(uinteger,range(0,255))';
		o.placeholder = '1';
		o.editable = true;

		o = s.option(form.Value, 'advskew', _('Advskew'), _('Lower wins: 0 on the preferred master, e.g. 100 on backups.'));
		o.datatype = 'and(uinteger,range(0,254))';
		o.placeholder = '0';
		o.editable = true;
		o.validate = function(section_id, value) {
			const base = this.section.formvalue(section_id, 'advbase');
			if (base === '0' && (value || '0') === '0')
				return _('advbase 0 needs a non-zero advskew');
			return true;
		};

		o = s.option(form.DynamicList, 'address', _('Virtual addresses'), _('Address with prefix, e.g. 192.168.1.1/24 or fd00::1/64.'));
		o.datatype = 'ipaddr';
		o.rmempty = false;
		o.validate = (section_id, value) => (value && isMulticast(value)) ? _('Expecting: a unicast address') : true;

		o = s.option(form.Value, 'password', _('Password'), _('At most 19 bytes, the same on every router of the group.'));
		o.datatype = 'maxlength(19)';
		o.password = true;
		o.modalonly = true;

		o = s.option(form.DynamicList, 'peer', _('Unicast peers'), _('Send advertisements to these addresses instead of multicast.'));
		o.datatype = 'ipaddr("nomask")';
		o.modalonly = true;

		o = s.option(form.DynamicList, 'group', _('Demotion groups'),
			_('Besides group carp, which every vhid is in: the trackers of these groups demote this vhid.'));
		o.modalonly = true;
		o.validate = validateGroup;

		o = s.option(form.ListValue, 'preempt', _('Preempt'));
		o.value('', _('as in the global settings'));
		o.value('1', _('yes'));
		o.value('0', _('no'));
		o.modalonly = true;

		/* config track '<name>' (docs/trackers.md) */
		s = m.section(form.TypedSection, 'track', _('Trackers'),
			_('Each tracker watches something the routers depend on (an upstream gateway, a WAN network, a script\'s verdict) and, while it is down, demotes the vhids of its group, so the peer takes over. The name is the demotion source shown on the status page.'));
		s.addremove = true;
		s.anonymous = false;
		s.handleAdd = function(ev, name) {
			if (reservedNames.includes(name)) {
				ui.addNotification(null, E('p', _('"%s" is the name of a built-in demotion source; call the tracker something else.').format(name)), 'error');
				return;
			}
			return form.TypedSection.prototype.handleAdd.apply(this, [ ev, name ]);
		};

		o = s.option(form.ListValue, 'type', _('Type'));
		o.value('ping', _('ping: ICMP echo to targets'));
		o.value('interface', _('interface: an OpenWrt network or a device\'s link'));
		o.value('script', _('script: a command, exit 0 is good'));
		o.value('file', _('file: the number in a file is the demotion'));
		o.value('process', _('process: a program is running'));
		o.rmempty = false;

		o = s.option(form.DynamicList, 'target', _('Targets'), _('IPv4 or IPv6 addresses to ping, e.g. the upstream gateway.'));
		o.depends('type', 'ping');
		o.datatype = 'ipaddr("nomask")';
		o.rmempty = false;
		o.validate = (section_id, value) =>
			(value && (isMulticast(value) || /^(0\.0\.0\.0|::)$/.test(value))) ? _('Expecting: a unicast address') : true;

		o = s.option(form.Value, 'device', _('Device or network'),
			_('ping: the device or OpenWrt network to send out of (optional); interface: the network or device to follow (required).'));
		o.depends('type', 'ping');
		o.depends('type', 'interface');
		o.datatype = 'netdevname';

		o = s.option(form.Value, 'command', _('Command'),
			_('Run every interval; exit status 0 is good. Split on blanks, no shell (an argument with blanks needs <code>list command</code> in the file).'));
		o.depends('type', 'script');
		o.rmempty = false;
		/* `list command` (argv) shows joined; saved only when edited, then as one string. */
		o.cfgvalue = function(section_id) {
			const v = form.Value.prototype.cfgvalue.apply(this, [ section_id ]);
			return Array.isArray(v) ? v.join(' ') : v;
		};

		o = s.option(form.Value, 'path', _('File'), _('Its integer is the demotion (0 for none).'));
		o.depends('type', 'file');
		o.rmempty = false;
		o.validate = (section_id, value) => (!value || value.charAt(0) == '/') ? true : _('Expecting: an absolute path');

		o = s.option(form.Value, 'name', _('Process name'));
		o.depends('type', 'process');
		o.rmempty = false;
		o.datatype = 'maxlength(255)';

		o = s.option(form.Value, 'interval', _('Interval'), _('Seconds between rounds; decimals allowed (0.2), at least 0.05.'));
		o.placeholder = '1';
		o.validate = (section_id, value) => validateSeconds(0.05, value);

		o = s.option(form.Value, 'timeout', _('Timeout'), _('Seconds one round (a probe, a script run) may take; by default the interval, but at most 1.'));
		o.placeholder = '1';
		o.validate = function(section_id, value) {
			const ok = validateSeconds(0.001, value);
			if (ok !== true || !value)
				return ok;
			const interval = seconds(this.section.formvalue(section_id, 'interval') || '1');
			const down = +(this.section.formvalue(section_id, 'down') || 3);
			if (!isNaN(interval) && down >= 1 && seconds(value) > interval * down)
				return _('Expecting: at most interval × down (%s s), or the tracker could not go down in time').format(String(+(interval * down).toFixed(3)));
			return true;
		};

		o = s.option(form.Value, 'reliability', _('Reliability'), _('A round is good when at least this many targets answer.'));
		o.depends('type', 'ping');
		o.datatype = 'and(uinteger,range(1,255))';
		o.placeholder = '1';
		o.validate = function(section_id, value) {
			const targets = this.section.formvalue(section_id, 'target') || [];
			if (value && targets.length && +value > targets.length)
				return _('Expecting: at most the number of targets (%d)').format(targets.length);
			return true;
		};

		o = s.option(form.Value, 'down', _('Down after'), _('Consecutive bad rounds before the tracker counts as down.'));
		o.datatype = 'and(uinteger,range(1,1000))';
		o.placeholder = '3';

		o = s.option(form.Value, 'up', _('Up after'), _('Consecutive good rounds before it counts as up again.'));
		o.datatype = 'and(uinteger,range(1,1000))';
		o.placeholder = '3';

		o = s.option(form.Value, 'group', _('Demotion group'), _('carp (every vhid) or a group listed in vhids.'));
		o.placeholder = 'carp';
		o.validate = validateGroup;

		o = s.option(form.Value, 'weight', _('Weight'), _('Demotion added while down.'));
		o.depends('type', 'ping');
		o.depends('type', 'interface');
		o.depends('type', 'script');
		o.depends('type', 'process');
		o.datatype = 'and(uinteger,range(1,255))';
		o.placeholder = '1';

		/* config service '<name>' (docs/services.md) */
		s = m.section(form.GridSection, 'service', _('Service roles'),
			_('Services that run on the master only (a DHCP server, router advertisements): started when all the vhids listed are MASTER, after their addresses are up, and stopped when this router becomes backup. Use the same services on every router.'));
		s.addremove = true;
		s.anonymous = false;
		s.nodescriptions = true;

		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.default = o.enabled;
		o.rmempty = false;
		o.editable = true;

		o = s.option(form.Value, 'name', _('Service'), _('The init script in /etc/init.d (OpenWrt) or the systemd unit, e.g. dnsmasq or odhcpd.'));
		o.rmempty = false;
		o.editable = true;
		o.validate = (section_id, value) =>
			/^[A-Za-z0-9_@:][A-Za-z0-9_.@:-]{0,63}$/.test(value || '') ? true : _('Expecting: a service name (letters, digits and _ - . @ :, no slash)');

		o = s.option(form.DynamicList, 'vhid', _('Follows vhids'), _('The vhid sections whose MASTER state the service follows; empty for all.'));
		o.validate = function(section_id, value) {
			if (!value)
				return true;
			return uci.get('carpd', value, '.type') == 'vhid' ? true : _('Expecting: the name of a vhid section');
		};

		o = s.option(form.ListValue, 'master', _('On master'));
		o.value('start', _('start'));
		o.value('restart', _('restart'));
		o.value('reload', _('reload'));
		o.value('none', _('nothing'));
		o.default = 'start';
		o.editable = true;

		o = s.option(form.ListValue, 'backup', _('On backup'));
		o.value('stop', _('stop'));
		o.value('reload', _('reload'));
		o.value('none', _('nothing'));
		o.default = 'stop';
		o.editable = true;

		o = s.option(form.Value, 'timeout', _('Timeout'), _('Seconds one action may take before it is killed.'));
		o.datatype = 'and(uinteger,range(1,3600))';
		o.placeholder = '30';
		o.modalonly = true;

		o = s.option(form.ListValue, 'backend', _('Run through'));
		o.value('auto', _('automatic: ubus rc, else the init script, else systemd'));
		o.value('rc', _('ubus rc (rpcd)'));
		o.value('initd', _('the init script'));
		o.value('systemd', _('systemctl'));
		o.default = 'auto';
		o.modalonly = true;

		/*
		 * initscript is not offered: carpd runs it as root, so it is set
		 * by root in the file (docs/services.md).
		 */

		/* config sync 'sync' */
		s = m.section(form.NamedSection, 'sync', 'sync', _('Connection state sync'),
			_('Replicates the conntrack table to the peer over a dedicated link, so that established and NATed connections survive a failover.'));
		s.addremove = true;

		s.tab('general', _('General'));
		s.tab('tuning', _('Tuning'));
		/* Not 'filter': form.js keeps the tabs in an Array indexed by name,
		 * and a name an Array already has throws "Tab already declared". */
		s.tab('flows', _('Flow filter'));
		s.tab('follow', _('Leases and configuration'));

		o = s.taboption('general', form.Flag, 'enabled', _('Enabled'));
		o.default = o.enabled;
		o.rmempty = false;

		o = s.taboption('general', form.Value, 'interface', _('Sync interface'), _('The dedicated link to the peer.'));
		o.datatype = 'netdevname';
		o.rmempty = false;

		o = s.taboption('general', form.Value, 'peer', _('Peer address'), _('Unicast address of the peer on the sync link.'));
		o.datatype = 'ipaddr("nomask")';
		o.validate = function(section_id, value) {
			if (value && isMulticast(value))
				return _('Expecting: a unicast address');
			if (!value && !this.section.formvalue(section_id, 'group'))
				return _('Set the peer address (or a multicast group)');
			return true;
		};

		o = s.taboption('general', form.Value, 'group', _('Multicast group'), _('Instead of a peer address.'));
		o.datatype = 'ipaddr("nomask")';
		o.validate = function(section_id, value) {
			if (!value)
				return true;
			if (!isMulticast(value))
				return _('Expecting: a multicast address');
			if (this.section.formvalue(section_id, 'peer'))
				return _('Set either the peer address or a multicast group, not both');
			return true;
		};

		o = s.taboption('general', form.Value, 'port', _('UDP port'));
		o.datatype = 'and(port,min(1))';
		o.placeholder = '7112';

		o = s.taboption('general', form.Value, 'key', _('Key'),
			_('64 hex digits (<code>head -c32 /dev/urandom | hexdump -e \'32/1 "%02x"\'</code>), or a passphrase of at least 16 characters.'));
		o.password = true;
		o.rmempty = false;
		o.validate = validateKey;

		o = s.taboption('tuning', form.Value, 'bandwidth', _('Bandwidth cap'), _('e.g. 256kbit or 1mbit; empty for none.'));
		o.validate = validateBandwidth;

		o = s.taboption('tuning', form.Value, 'window', _('Coalescing window'));
		o.placeholder = '200ms';
		o.validate = validateDuration;

		o = s.taboption('tuning', form.Value, 'refresh', _('Refresh interval'));
		o.placeholder = '60s';
		o.validate = validateDuration;

		o = s.taboption('tuning', form.Value, 'bulk_timeout', _('Bulk timeout'), _('How long CARP stays demoted waiting for the peer\'s table.'));
		o.placeholder = '60s';
		o.validate = validateDuration;

		o = s.taboption('tuning', form.Value, 'demotion', _('Demotion during bulk'));
		o.datatype = 'and(uinteger,range(0,255))';
		o.placeholder = '32';

		o = s.taboption('flows', form.DynamicList, 'protocol', _('Protocols'), _('tcp, udp, icmp, icmpv6 or sctp; empty for all but sctp.'));
		o.validate = (section_id, value) =>
			(!value || /^(tcp|udp|icmp|icmpv6|ipv6-icmp|sctp)$/i.test(value)) ? true : _('Expecting: tcp, udp, icmp, icmpv6 or sctp');

		o = s.taboption('flows', form.DynamicList, 'include', _('Only these networks'));
		o.datatype = 'ipaddr';

		o = s.taboption('flows', form.DynamicList, 'exclude', _('Never these networks'));
		o.datatype = 'ipaddr';

		o = s.taboption('flows', form.DynamicList, 'zone', _('Conntrack zones'));
		o.datatype = 'and(uinteger,range(0,65535))';

		o = s.taboption('flows', form.Value, 'mark', _('Connection mark'), _('e.g. 0x10 or 0x10/0xff'));
		o.validate = validateMark;

		o = s.taboption('flows', form.ListValue, 'min_state', _('TCP flows from'));
		o.value('any', _('any state'));
		o.value('established', _('established'));
		o.value('assured', _('assured (seen both ways)'));
		o.default = 'any';

		/* DHCP lease sync and configuration sync (docs/config-sync.md). */
		o = s.taboption('follow', form.Flag, 'lease_sync', _('DHCP lease sync'),
			_('Replicates dnsmasq\'s lease file to the peer, and merges the peer\'s leases into it while this router is backup. Pair it with a service role for dnsmasq, so that a new master\'s dnsmasq starts with every lease.'));

		o = s.taboption('follow', form.Value, 'leasefile', _('Lease file'), _('dnsmasq\'s lease file (its dhcp-leasefile).'));
		o.placeholder = '/tmp/dhcp.leases';
		o.validate = validateLeaseFile;
		o.depends('lease_sync', '1');

		o = s.taboption('follow', form.ListValue, 'config_role', _('Configuration sync'),
			_('The primary sends the packages and files listed below whenever they change; the secondary checks and writes them, then reloads. A secondary whose copy was edited since the last sync keeps it and reports a conflict until <code>carpd config-sync --force</code>. Set the same lists on both routers.'));
		o.value('none', _('off'));
		o.value('primary', _('primary: sends'));
		o.value('secondary', _('secondary: receives'));
		o.default = 'none';

		o = s.taboption('follow', form.DynamicList, 'config', _('UCI packages'), _('e.g. firewall, dhcp. Never carpd (each router\'s own).'));
		o.validate = validateSyncPackage;
		o.depends('config_role', 'primary');
		o.depends('config_role', 'secondary');

		o = s.taboption('follow', form.DynamicList, 'file', _('Files'), _('Plain files under /etc/, the same path on both routers.'));
		o.validate = validateSyncFile;
		o.depends('config_role', 'primary');
		o.depends('config_role', 'secondary');

		/*
		 * config_dir (where carpd writes the packages as root) and
		 * reload_command (a program carpd runs as root) are not offered:
		 * they are set by root in the file (docs/uci.md).
		 */

		return m.render();
	}
});
