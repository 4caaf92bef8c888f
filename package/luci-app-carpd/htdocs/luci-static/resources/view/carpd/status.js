'use strict';
'require view';
'require poll';
'require rpc';
'require ui';

/*
 * carpd status: the CARP state of every vhid with the demotion sources
 * behind it, the trackers, a split-brain alarm, the state-sync link and
 * the DHCP lease and configuration sync, the recent transitions, refreshed every few seconds from `ubus call
 * carpd status`; buttons for maintenance mode (which waits for the peer
 * to confirm the handover, docs/ubus.md) and a conntrack resync.
 */

const callStatus = rpc.declare({
	object: 'carpd',
	method: 'status'
});

const callMaintenance = rpc.declare({
	object: 'carpd',
	method: 'maintenance',
	params: [ 'enable', 'wait' ]
});

const callResync = rpc.declare({
	object: 'carpd',
	method: 'resync'
});

const css = `
.carpd-badge { display: inline-block; min-width: 5.5em; padding: .15em .6em; border-radius: 3px;
	font-weight: bold; text-align: center; color: #fff; }
.carpd-master { background: #2e7d32; }
.carpd-backup { background: #1565c0; }
.carpd-init { background: #c62828; }
.carpd-muted { color: #777; font-size: 90%; }
.carpd-error { color: #c62828; }
.carpd-actions .btn { margin-right: .5em; }
.carpd-up { background: #2e7d32; }
.carpd-down { background: #c62828; }
.carpd-source { font-size: 90%; margin-top: .2em; }
.carpd-alarm { font-weight: bold; }
`;

/*
 * E() that inserts strings as text. LuCI's dom.append() sets a lone string
 * child as innerHTML (markup), while the items of an array become text
 * nodes. What this page shows comes from carpd and its configuration
 * (interface names, reasons, errors, peer names): every string goes in as
 * text, never as markup.
 */
function T(tag, attrs, children) {
	if (children === undefined && (attrs == null || typeof attrs != 'object' || Array.isArray(attrs) || attrs instanceof Node)) {
		children = attrs;
		attrs = {};
	}
	const list = (children == null) ? [] : (Array.isArray(children) ? children.flat(Infinity) : [ children ]);
	return E(tag, attrs || {}, list.map((c) => (c == null) ? '' : c));
}

/* Go's zero time.Time marshals as year 1: treat it as "never". */
function parseTime(s) {
	const t = Date.parse(s || '');
	return (isNaN(t) || t < Date.UTC(2000, 0, 1)) ? null : t;
}

function duration(ms) {
	let s = Math.max(0, Math.floor(ms / 1000));
	const d = Math.floor(s / 86400); s %= 86400;
	const h = Math.floor(s / 3600); s %= 3600;
	const m = Math.floor(s / 60); s %= 60;

	if (d > 0)
		return _('%dd %dh').format(d, h);
	if (h > 0)
		return _('%dh %dm').format(h, m);
	if (m > 0)
		return _('%dm %ds').format(m, s);
	return _('%ds').format(s);
}

function pad(n) {
	return (n < 10 ? '0' : '') + n;
}

function timestamp(t) {
	const d = new Date(t);
	return '%d-%s-%s %s:%s:%s'.format(d.getFullYear(), pad(d.getMonth() + 1), pad(d.getDate()),
		pad(d.getHours()), pad(d.getMinutes()), pad(d.getSeconds()));
}

/* A time of day for "since 09:58:12" (the date too when not today). */
function clock(t, now) {
	const d = new Date(t), n = new Date(now);
	if (d.toDateString() != n.toDateString())
		return timestamp(t);
	return '%s:%s:%s'.format(pad(d.getHours()), pad(d.getMinutes()), pad(d.getSeconds()));
}

/* "since 09:58:12", with the absolute time and the age as a tooltip. */
function since(s, now) {
	const t = parseTime(s);
	if (t == null)
		return '';
	return T('span', { 'class': 'carpd-muted', 'title': '%s (%s)'.format(timestamp(t), _('%s ago').format(duration(now - t))) },
		_('since %s').format(clock(t, now)));
}

/*
 * One demotion source: "+1 wan_ping (group wan): 0 of 1 targets answered
 * for 3 rounds, since 09:58:12". Group "" is the vhid's own source.
 */
function source(s, now) {
	const until = parseTime(s.expires);
	return T('div', { 'class': 'carpd-source', 'data-source': '%s/%s'.format(s.group || '', s.name) }, [
		T('strong', {}, '+%d'.format(s.value || 0)), ' ', s.name || '?', ' ',
		T('span', { 'class': 'carpd-muted' }, s.group ? _('(group %s)').format(s.group) : _('(this vhid)')),
		s.reason ? ': ' + s.reason : '', parseTime(s.since) != null ? [ ', ', since(s.since, now) ] : '',
		until != null ? T('span', { 'class': 'carpd-muted', 'title': timestamp(until) }, _(', until %s').format(clock(until, now))) : ''
	]);
}

/* "5m 3s ago", with the absolute time as a tooltip. */
function ago(s, now) {
	const t = parseTime(s);
	if (t == null)
		return T('span', { 'class': 'carpd-muted' }, _('never'));
	return T('span', { 'title': timestamp(t) }, _('%s ago').format(duration(now - t)));
}

function bytes(n) {
	const units = [ 'B', 'KiB', 'MiB', 'GiB', 'TiB' ];
	let i = 0;
	n = +n || 0;
	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return (i == 0 ? '%d %s' : '%.2f %s').format(n, units[i]);
}

function sum(obj, keys) {
	return keys.reduce((acc, k) => acc + (+(obj || {})[k] || 0), 0);
}

function badge(state) {
	const s = String(state || 'INIT').toUpperCase();
	const cls = { MASTER: 'carpd-master', BACKUP: 'carpd-backup', UP: 'carpd-up', DOWN: 'carpd-down', UNKNOWN: 'carpd-muted' }[s] || 'carpd-init';
	return T('span', { 'class': 'carpd-badge ' + cls, 'data-state': s }, s);
}

function table(titles, rows, empty) {
	return T('table', { 'class': 'table' }, [
		T('tr', { 'class': 'tr table-titles' }, titles.map((t) => T('th', { 'class': 'th' }, t)))
	].concat(rows.length ? rows : [
		T('tr', { 'class': 'tr placeholder' }, T('td', { 'class': 'td', 'colspan': titles.length }, T('em', empty)))
	]));
}

/* A two-column table of label: value rows. */
function facts(rows) {
	return T('table', { 'class': 'table' }, rows.filter((r) => r != null).map((r) =>
		T('tr', { 'class': 'tr', 'data-fact': r[0] }, [
			T('td', { 'class': 'td left', 'width': '33%' }, r[1]),
			T('td', { 'class': 'td left' }, r[2])
		])));
}

const advertErrors = [ 'bad_checksum', 'bad_hmac', 'bad_ttl', 'bad_version_or_length', 'send_errors', 'queue_overflow',
	'stale_sequence', 'timing_mismatch', 'format_downgrade' ];
const syncDrops = [ 'drop_auth', 'drop_replay', 'drop_epoch', 'drop_malformed', 'drop_wrong_source',
	'drop_queue_full', 'drop_invalid_flow', 'drop_unknown_id', 'drop_oversize', 'drop_peer_table_full',
	'apply_errors', 'send_errors' ];
const syncRefused = [ 'refused_protocol', 'refused_address', 'refused_local', 'refused_zone', 'refused_mark',
	'refused_state', 'refused_clash' ];

return view.extend({
	load() {
		return callStatus();
	},

	renderVHIDs(st, now) {
		return table([ _('Interface'), _('VHID'), _('State'), _('Master'), _('Demotion (ours, the peer\'s)'),
			_('Virtual addresses'), _('Adverts sent / received'), _('Errors') ],
		(st.vhids || []).map((v) => {
			const since = parseTime(v.since);
			let master;

			if (v.state == 'MASTER')
				master = T('em', _('this router'));
			else if (v.master)
				master = T('span', {}, [ v.master, T('br'), T('span', { 'class': 'carpd-muted' }, [ _('seen'), ' ', ago(v.master_seen, now) ]) ]);
			else
				master = T('span', { 'class': 'carpd-muted' }, _('none heard'));

			const errs = sum(v.counters, advertErrors);

			return T('tr', { 'class': 'tr', 'data-vhid': '%s/%d'.format(v.interface, v.vhid) }, [
				T('td', { 'class': 'td' }, v.network ? '%s (%s)'.format(v.network, v.interface) : v.interface),
				T('td', { 'class': 'td' }, [ String(v.vhid), T('br'),
					T('span', { 'class': 'carpd-muted' }, _('advbase %d, advskew %d').format(v.advbase, v.advskew)) ]),
				T('td', { 'class': 'td' }, [ badge(v.state), T('br'),
					since != null ? T('span', { 'class': 'carpd-muted', 'title': timestamp(since) },
						_('for %s').format(duration(now - since))) : '',
					v.error ? T('div', { 'class': 'carpd-error' }, v.error) : '' ]),
				T('td', { 'class': 'td' }, master),
				T('td', { 'class': 'td', 'data-demotion': String(v.demotion || 0) }, [
					T('strong', {}, String(v.demotion || 0)), ' ',
					T('span', { 'class': 'carpd-muted', 'title': _('The demotion in the master\'s last advertisement') },
						v.peer_demotion != null ? _('(peer %d)').format(v.peer_demotion) : ''),
					(v.demotion_sources || []).map((s) => source(s, now)),
					(v.groups || []).length > 1 ? T('div', { 'class': 'carpd-muted' }, _('groups: %s').format(v.groups.join(', '))) : ''
				]),
				T('td', { 'class': 'td' }, (v.addresses || []).map((a) => T('div', {}, a))),
				T('td', { 'class': 'td' }, '%d / %d'.format((v.counters || {}).adverts_sent || 0, (v.counters || {}).adverts_received || 0)),
				T('td', { 'class': 'td', 'title': advertErrors.map((k) => '%s: %d'.format(k, (v.counters || {})[k] || 0)).join('\n') },
					errs ? T('span', { 'class': 'carpd-error' }, String(errs)) : '0')
			]);
		}), _('No virtual hosts are configured.'));
	},

	/* The service roles (docs/services.md): role and last action of each. */
	renderServices(st, now) {
		return table([ _('Service'), _('Role'), _('Follows'), _('Last action') ], (st.services || []).map((s) => {
			const ran = parseTime(s.time);
			return T('tr', { 'class': 'tr', 'data-service': s.name }, [
				T('td', { 'class': 'td' }, [ T('strong', {}, s.name || '?'), T('br'),
					T('span', { 'class': 'carpd-muted' }, _('%s via %s').format(s.service || '?', s.backend || '?')) ]),
				T('td', { 'class': 'td' }, badge(s.role || 'unknown')),
				T('td', { 'class': 'td' }, (s.vhids || []).join(', ') || '-'),
				T('td', { 'class': 'td', 'data-result': s.result || '' }, s.action ? [
					_('%s: %s').format(s.action, s.result || '?'), ' ',
					ran != null ? T('span', { 'class': 'carpd-muted', 'title': timestamp(ran) }, _('at %s').format(clock(ran, now))) : '',
					s.error ? T('div', { 'class': 'carpd-error' }, s.error) : ''
				] : '-')
			]);
		}), _('No services follow the CARP role.'));
	},

	renderTrackers(st, now) {
		return table([ _('Tracker'), _('State'), _('Demotion'), _('Reason'), _('Targets') ], (st.trackers || []).map((k) => {
			const targets = (k.targets || []).map((x) => {
				const lost = x.sent ? 100 * (x.sent - (x.received || 0)) / x.sent : 0;
				return T('div', { 'data-target': x.address }, [ x.address, ': ',
					x.received ? _('%.1f ms').format(x.rtt_ms || 0) : _('no answer'), ', ',
					T('span', { 'title': _('%d of %d echo requests answered').format(x.received || 0, x.sent || 0) },
						_('%.1f%% lost').format(lost)) ]);
			});
			return T('tr', { 'class': 'tr', 'data-tracker': k.name }, [
				T('td', { 'class': 'td' }, [ T('strong', {}, k.name || '?'), T('br'),
					T('span', { 'class': 'carpd-muted' }, _('%s, group %s').format(k.type || '?', k.group || 'carp')) ]),
				T('td', { 'class': 'td' }, [ badge(k.state), T('br'), since(k.since, now) ]),
				T('td', { 'class': 'td' }, [ String(k.value || 0), ' ',
					T('span', { 'class': 'carpd-muted' }, _('(weight %d)').format(k.weight || 0)) ]),
				T('td', { 'class': 'td' }, [ k.reason || '',
					k.error ? T('div', { 'class': 'carpd-error' }, k.error) : '',
					T('div', { 'class': 'carpd-muted' }, _('%d rounds, %d bad').format(k.rounds || 0, k.bad || 0)) ]),
				T('td', { 'class': 'td' }, targets.length ? targets : '-')
			]);
		}), _('No trackers are configured.'));
	},

	/* The split-brain alarm: vhids that are MASTER here and on the peer. */
	renderSplitBrain(st, now) {
		const sb = st.split_brain || [];
		if (!sb.length)
			return '';
		return T('div', { 'class': 'alert-message error carpd-alarm', 'data-alarm': 'split-brain' }, [
			T('p', {}, _('Split brain: both routers are MASTER of the same virtual host, and both answer for its addresses.')),
			sb.map((s) => T('div', { 'data-split-brain': '%s/%d'.format(s.interface, s.vhid) }, [
				_('%s vhid %d').format(s.interface, s.vhid), ', ', since(s.since, now) ])),
			T('p', { 'class': 'carpd-muted' }, _('The two routers see each other on the sync link but not each other\'s CARP advertisements on this interface: check the link, a switch or a VLAN between them.'))
		]);
	},

	/*
	 * The progress of the last `maintenance {wait}`: waiting, done or
	 * failed; on is the mode it waits for (on: the peer takes over; off:
	 * this router is back in service).
	 */
	renderMaintWait(w, on, now) {
		if (w == null || typeof w != 'object')
			return '';
		const t = parseTime(w.since);
		const age = t != null ? duration(now - t) : '?';
		switch (w.state) {
		case 'waiting':
			return T('span', { 'data-wait': 'waiting' }, on
				? _('Waiting for the peer to take over every vhid and to confirm the flow table (%s)…').format(age)
				: _('Waiting for every vhid to settle and for the peer\'s flow table (%s)…').format(age));
		case 'done':
			return T('span', { 'data-wait': 'done' }, on
				? _('Handover confirmed: the peer is master of every vhid and has the flow table.')
				: _('Back in service: every vhid is settled and the peer\'s flow table is here.'));
		case 'failed':
			return T('span', { 'class': 'carpd-error', 'data-wait': 'failed' }, _('Handover not confirmed: %s').format(w.reason || _('no reason given')));
		}
		return '';
	},

	renderSync(st, now) {
		const s = st.sync || {};

		if (!s.enabled)
			return T('p', { 'class': 'carpd-muted' }, _('State sync is not configured.'));

		const b = s.bulk || {};
		const c = s.counters || {};
		let link, receive, serve = null;

		if (s.established)
			link = _('established');
		else if (s.handshake_failing)
			link = _('peer up, handshake refused (the sync demotion stays)');
		else if (s.peer_up)
			link = _('peer up, handshaking');
		else
			link = _('waiting for the peer');

		if (b.timed_out)
			receive = _('gave up waiting after %d flows').format(b.received || 0);
		else if (b.synced)
			receive = _('complete, %d flows received').format(b.received || 0);
		else
			receive = _('receiving, %d flows so far').format(b.received || 0);

		if (b.serving) {
			const total = Math.max(s.flows_local || 0, b.queued || 0);
			const pct = total ? Math.floor(100 * (total - (b.queued || 0)) / total) : 100;
			serve = [ 'serve', _('Bulk transfer to the peer'), T('div', {}, [
				T('div', { 'class': 'cbi-progressbar', 'title': '%d%%'.format(pct) }, T('div', { 'style': 'width:%d%%'.format(pct) })),
				T('span', { 'class': 'carpd-muted' }, _('%d%% sent, %d flows left').format(pct, b.queued || 0))
			]) ];
		}

		return facts([
			s.error ? [ 'error', _('Error'), T('span', { 'class': 'carpd-error' }, s.error) ] : null,
			[ 'interface', _('Sync interface'), s.interface || '-' ],
			[ 'peer', _('Peer'), [ s.peer_name ? '%s (%s)'.format(s.peer, s.peer_name) : (s.peer || '-'), ' – ', link,
				s.rtt ? _(', RTT %s').format(s.rtt) : '' ] ],
			[ 'last_ack', _('Last acknowledgement'), ago(s.last_ack, now) ],
			[ 'flows', _('Flows'), _('%d local (%d acknowledged, %d pending), %d from the peer').format(
				s.flows_local || 0, s.flows_synced || 0, s.flows_pending || 0, s.flows_from_peer || 0) ],
			[ 'bulk', _('Bulk transfer from the peer'), receive ],
			serve,
			[ 'bytes', _('Traffic'), _('%s sent, %s received (%d / %d frames)').format(
				bytes(c.bytes_sent), bytes(c.bytes_received), c.frames_sent || 0, c.frames_received || 0) ],
			[ 'records', _('Flow records'), _('%d sent, %d received, %d resent, %d never sent (short-lived)').format(
				c.records_sent || 0, c.records_received || 0, c.flows_resent || 0, c.flows_never_sent || 0) ],
			[ 'repair', _('Repaired'), _('%d asked for again, %d sent again on request, %d stale deleted').format(
				c.flows_wanted || 0, c.flows_repaired || 0, c.flows_purged_stale || 0) ],
			[ 'refused', _('Refused from the peer'), T('span', { 'title': syncRefused.map((k) => '%s: %d'.format(k, c[k] || 0)).join('\n') },
				_('%d flows (outside this router\'s own sync filter), %d timeouts clamped').format(sum(c, syncRefused), c.timeouts_clamped || 0)) ],
			[ 'drops', _('Dropped frames'), T('span', { 'title': syncDrops.map((k) => '%s: %d'.format(k, c[k] || 0)).join('\n') },
				String(sum(c, syncDrops))) ],
			this.leaseFact(s.leases, now)
		]);
	},

	/* DHCP lease sync (sync.leases): the leases on each side, the events, the writes. */
	leaseFact(l, now) {
		if (!l || !l.enabled)
			return [ 'leases', _('DHCP leases'), T('span', { 'class': 'carpd-muted' }, _('not synced')) ];
		const refused = l.refused || {};
		const nref = Object.keys(refused).reduce((acc, k) => acc + (+refused[k] || 0), 0);
		return [ 'leases', _('DHCP leases'), [
			_('%d in %s, %d from the peer; %d events sent, %d received').format(l.local || 0, l.file || '?', l.peer || 0,
				l.sent || 0, l.received || 0),
			T('br'),
			T('span', { 'class': 'carpd-muted' }, [ _('file written %d times, last').format(l.written || 0), ' ', ago(l.last_write, now) ]),
			nref ? T('div', { 'class': 'carpd-error', 'title': Object.keys(refused).sort().map((k) => '%s: %d'.format(k, refused[k])).join('\n') },
				_('Lease events of the peer refused: %d').format(nref)) : '',
			l.error ? T('div', { 'class': 'carpd-error' }, l.error) : ''
		] ];
	},

	/*
	 * Configuration sync (sync.config, docs/config-sync.md): per package or
	 * file, the hash on each side, the last sync and a conflict or error.
	 */
	renderConfigSync(st, now) {
		const c = (st.sync || {}).config;

		if (!c)
			return T('p', { 'class': 'carpd-muted' }, _('Configuration sync is off.'));

		const short = (h) => h ? T('code', { 'title': h }, h.substring(0, 12)) : T('span', { 'class': 'carpd-muted' }, _('none'));
		const refused = c.refused || {};
		const nref = Object.keys(refused).reduce((acc, k) => acc + (+refused[k] || 0), 0);

		return T('div', {}, [
			T('p', {}, (c.role == 'primary')
				? _('This router is the primary: it sends these to the secondary.')
				: _('This router is the secondary: it takes these from the primary.')),
			table([ _('Package or file'), _('State'), _('Here'), _('Peer'), _('Last sync') ], (c.packages || []).map((p) => {
				let state, text;
				if (p.conflict) {
					state = 'conflict';
					text = T('span', { 'class': 'carpd-error' }, [ _('conflict'), T('div', {}, p.conflict) ]);
				} else if (p.error) {
					state = 'error';
					text = T('span', { 'class': 'carpd-error' }, [ _('error'), T('div', {}, p.error) ]);
				} else if (p.local_hash && p.local_hash == p.peer_hash) {
					state = 'synced';
					text = _('in sync');
				} else {
					state = 'pending';
					text = T('span', { 'class': 'carpd-muted' }, _('differs or not answered yet'));
				}
				return T('tr', { 'class': 'tr', 'data-config': p.name, 'data-state': state }, [
					T('td', { 'class': 'td' }, [ p.name || '?', ' ', T('span', { 'class': 'carpd-muted' }, p.kind == 'file' ? _('(file)') : _('(UCI)')) ]),
					T('td', { 'class': 'td' }, text),
					T('td', { 'class': 'td' }, short(p.local_hash)),
					T('td', { 'class': 'td' }, short(p.peer_hash)),
					T('td', { 'class': 'td' }, ago(p.last_sync, now))
				]);
			}), _('No packages or files are listed.')),
			nref ? T('p', { 'class': 'carpd-error', 'title': Object.keys(refused).sort().map((k) => '%s: %d'.format(k, refused[k])).join('\n') },
				_('Configuration records of the peer refused: %d').format(nref)) : ''
		]);
	},

	renderTransitions(st) {
		const tr = (st.transitions || []).slice().reverse();

		return table([ _('Time'), _('Virtual host'), _('Change'), _('Reason'), _('Master') ], tr.map((t) => {
			const at = parseTime(t.time);
			return T('tr', { 'class': 'tr', 'data-transition': '%s/%d'.format(t.interface, t.vhid) }, [
				T('td', { 'class': 'td' }, at != null ? timestamp(at) : '-'),
				T('td', { 'class': 'td' }, '%s vhid %d'.format(t.interface, t.vhid)),
				T('td', { 'class': 'td' }, [ badge(t.from), ' → ', badge(t.to) ]),
				T('td', { 'class': 'td' }, t.reason || ''),
				T('td', { 'class': 'td' }, t.master || '')
			]);
		}), _('No transitions since carpd started.'));
	},

	renderGlobal(st, now) {
		const d = st.demotion || {};
		const started = parseTime(st.started);

		return facts([
			[ 'version', _('carpd'), _('version %s, pid %d').format(st.version || '?', st.pid || 0) ],
			[ 'uptime', _('Running for'), started != null ? T('span', { 'title': timestamp(started) }, duration(now - started)) : '-' ],
			[ 'maintenance', _('Maintenance mode'), [ d.maintenance
				? T('strong', { 'class': 'carpd-error' }, _('on: every vhid is handed to the peer'))
				: _('off'), st.maintenance_wait ? T('br') : '', this.renderMaintWait(st.maintenance_wait, d.maintenance, now) ] ],
			[ 'demotion', _('Demotion'), _('manual %d, link %d, sync %d').format(d.manual || 0, d.link || 0, d.sync || 0) ],
			(d.groups || []).length ? [ 'groups', _('Demotion groups'), d.groups.map((g) =>
				T('div', { 'data-group': g.name }, [ T('strong', {}, g.name), ': ', String(g.demotion || 0),
					(g.sources || []).map((s) => source(s, now)) ])) ] : null,
			st.split_brain_alarms != null ? [ 'split_brain', _('Split-brain alarms'),
				_('%d since carpd started').format(st.split_brain_alarms) ] : null,
			[ 'interfaces', _('Interfaces'), (st.interfaces || []).map((i) =>
				T('div', {}, [ i.name, ': ', i.link_up ? _('link up') : T('span', { 'class': 'carpd-error' }, _('link down')),
					i.error ? T('span', { 'class': 'carpd-error' }, ' – ' + i.error) : '' ])) ]
		]);
	},

	/* Fills the page from one status reply (or a ubus error code). */
	update(st) {
		/* carpd's clock when it answered (the browser's may be off); the
		 * browser's for a carpd too old to send it. */
		const now = (st != null && typeof st == 'object' && st.now && !isNaN(Date.parse(st.now)))
			? Date.parse(st.now) : Date.now();

		if (st == null || typeof st != 'object') {
			this.nodes.error.replaceChildren(T('p', { 'class': 'alert-message warning' },
				_('carpd does not answer on ubus (%s): is it running?').format(
					typeof st == 'number' ? rpc.getStatusText(st) : _('no data'))));
			return;
		}

		this.status = st;
		this.nodes.error.replaceChildren();
		this.nodes.alarm.replaceChildren(this.renderSplitBrain(st, now));
		this.nodes.global.replaceChildren(this.renderGlobal(st, now));
		this.nodes.vhids.replaceChildren(this.renderVHIDs(st, now));
		this.nodes.trackers.replaceChildren(this.renderTrackers(st, now));
		this.nodes.services.replaceChildren(this.renderServices(st, now));
		this.nodes.sync.replaceChildren(this.renderSync(st, now));
		this.nodes.config.replaceChildren(this.renderConfigSync(st, now));
		this.nodes.transitions.replaceChildren(this.renderTransitions(st));

		const maint = !!(st.demotion || {}).maintenance;
		const waiting = (st.maintenance_wait || {}).state == 'waiting';
		this.nodes.maintenance.textContent = waiting ? _('Waiting for the peer…')
			: (maint ? _('Leave maintenance mode') : _('Enter maintenance mode'));
		this.nodes.maintenance.disabled = waiting;
		this.nodes.resync.disabled = !((st.sync || {}).enabled && !(st.sync || {}).error);
	},

	refresh() {
		return callStatus().then(L.bind(this.update, this));
	},

	/* Runs a control call; a non-zero ubus status is an error. */
	control(call, args, done) {
		return call.apply(null, args).then((res) => {
			if (typeof res == 'number' && res != 0)
				throw new Error(rpc.getStatusText(res));
			ui.addNotification(null, T('p', done), 'info');
		}).catch((err) => {
			ui.addNotification(null, T('p', _('carpd refused: %s').format(err.message || err)), 'error');
		}).then(L.bind(this.refresh, this));
	},

	handleMaintenance(ev) {
		const enable = !((this.status || {}).demotion || {}).maintenance;

		if (!enable)
			return this.control(callMaintenance, [ false ], _('Maintenance mode is off: this router takes part in CARP again.'));

		ui.showModal(_('Enter maintenance mode?'), [
			T('p', _('Every vhid is demoted so that the peer takes over all virtual addresses, and stays so (across restarts) until maintenance mode is turned off.')),
			T('div', { 'class': 'right' }, [
				T('button', { 'class': 'btn', 'click': ui.hideModal }, _('Cancel')), ' ',
				T('button', {
					'class': 'btn cbi-button-negative',
					'data-action': 'confirm-maintenance',
					'click': ui.createHandlerFn(this, () => {
						ui.hideModal();
						return this.enterMaintenance();
					})
				}, _('Enter maintenance mode'))
			])
		]);
	},

	/*
	 * Maintenance on, waiting for the handover (ubus maintenance {enable,
	 * wait}): carpd answers when the peer is master of every vhid and has
	 * the flow table, or with the reason when it is not so in time. The
	 * wait stays below LuCI's RPC timeout; when it runs out first, the
	 * status keeps showing the progress (maintenance_wait) as carpd goes
	 * on waiting.
	 */
	enterMaintenance() {
		const wait = Math.max(5, (+L.env.rpctimeout || 20) - 5);

		this.nodes.maintenance.textContent = _('Waiting for the peer…');
		return callMaintenance(true, wait).then((res) => {
			if (typeof res == 'number' && res != 0)
				throw new Error(rpc.getStatusText(res));
			const w = (res != null && typeof res == 'object') ? res.wait : null;
			if (w && w.state == 'failed')
				ui.addNotification(null, T('p', _('Maintenance mode is on, but the handover is not confirmed: %s').format(w.reason || '?')), 'warning');
			else if (w && w.state == 'done')
				ui.addNotification(null, T('p', _('Maintenance mode is on: the peer took over every vhid.')), 'info');
			else
				ui.addNotification(null, T('p', _('Maintenance mode is on: the peer takes over.')), 'info');
		}).catch((err) => {
			ui.addNotification(null, T('p', _('carpd refused: %s').format(err.message || err)), 'error');
		}).then(L.bind(this.refresh, this));
	},

	handleResync(ev) {
		return this.control(callResync, [], _('Resync requested: the tables are exchanged again.'));
	},

	render(st) {
		this.nodes = {
			error: T('div'),
			alarm: T('div'),
			global: T('div'),
			vhids: T('div'),
			trackers: T('div'),
			services: T('div'),
			sync: T('div'),
			config: T('div'),
			transitions: T('div'),
			maintenance: T('button', { 'class': 'btn cbi-button cbi-button-action', 'data-action': 'maintenance',
				'click': ui.createHandlerFn(this, 'handleMaintenance') }, _('Enter maintenance mode')),
			resync: T('button', { 'class': 'btn cbi-button cbi-button-reload', 'data-action': 'resync',
				'click': ui.createHandlerFn(this, 'handleResync') }, _('Resync conntrack'))
		};

		const page = T('div', { 'class': 'cbi-map', 'id': 'carpd-status' }, [
			T('style', {}, css),
			T('h2', {}, _('CARP status')),
			T('div', { 'class': 'cbi-map-descr' }, _('The state of carpd\'s virtual hosts and of the connection-state sync, refreshed every five seconds.')),
			this.nodes.error,
			this.nodes.alarm,
			T('div', { 'class': 'cbi-section', 'data-section': 'global' }, [
				T('h3', {}, _('Overview')),
				this.nodes.global,
				T('div', { 'class': 'carpd-actions' }, [ this.nodes.maintenance, this.nodes.resync ])
			]),
			T('div', { 'class': 'cbi-section', 'data-section': 'vhids' }, [ T('h3', {}, _('Virtual hosts')), this.nodes.vhids ]),
			T('div', { 'class': 'cbi-section', 'data-section': 'trackers' }, [ T('h3', {}, _('Trackers')), this.nodes.trackers ]),
			T('div', { 'class': 'cbi-section', 'data-section': 'services' }, [ T('h3', {}, _('Service roles')), this.nodes.services ]),
			T('div', { 'class': 'cbi-section', 'data-section': 'sync' }, [ T('h3', {}, _('Connection state sync')), this.nodes.sync ]),
			T('div', { 'class': 'cbi-section', 'data-section': 'config' }, [ T('h3', {}, _('Configuration sync')), this.nodes.config ]),
			T('div', { 'class': 'cbi-section', 'data-section': 'transitions' }, [ T('h3', {}, _('Recent transitions')), this.nodes.transitions ])
		]);

		this.update(st);
		poll.add(L.bind(this.refresh, this), 5);

		return page;
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
