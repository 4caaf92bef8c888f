'use strict';
/*
 * A small stand-in for the part of LuCI's client API (luci-base's luci.js,
 * form.js, rpc.js, uci.js, ui.js, validation.js) that carpd's views use,
 * written for the browser test in this package. It follows the documented
 * behaviour of those modules -- 'require x' lines, view.extend with
 * load/render/handleSave, rpc.declare posting JSON-RPC "call" requests to
 * /ubus with the legacy [status, data] reply and `expect`, uci load/save
 * through rpcd's uci object, form.Map and its sections and options with
 * datatype validation that blocks a save -- but none of their code. It is
 * not LuCI; the test proves the views use the API as LuCI documents it.
 */
(function(window) {
	const document = window.document;

	/* String.prototype.format: %s %d %f (%.Nf) %h (HTML-escaped) %% as in LuCI. */
	String.prototype.format = function() {
		const args = arguments;
		let i = 0;
		return this.replace(/%(\.(\d+))?([sdfh%])/g, (m, p, prec, conv) => {
			if (conv == '%')
				return '%';
			const v = args[i++];
			switch (conv) {
			case 'd': return String(Math.trunc(+v || 0));
			case 'f': return (+v || 0).toFixed(prec != null ? +prec : 6);
			case 'h': return String(v == null ? '' : v).replace(/[&<>"']/g,
				(c) => ({ '&': '&#38;', '<': '&#60;', '>': '&#62;', '"': '&#34;', "'": '&#39;' })[c]);
			default: return String(v == null ? '' : v);
			}
		});
	};

	/* Translations: the test runs untranslated, as LuCI does for English. */
	window._ = (s) => s;
	window.N_ = (n, s, p) => (n == 1 ? s : p);

	/*
	 * E(tag, [attrs,] [children]) with the rules of luci.js dom.create,
	 * dom.attr and dom.append, which the views depend on: the second
	 * argument is the attributes when it is an object (a DOM node too) and
	 * not an array; an attribute that is null or undefined is left out, a
	 * function is an event listener, an object is set as JSON and anything
	 * else as its string (false is "false"); children that are an array
	 * are appended one by one, nodes as they are and everything else
	 * (null too) as a text node, but a lone child that is not a node is
	 * set as innerHTML, that is parsed as markup.
	 */
	function E(tag, attrs, children) {
		if (!(attrs instanceof Object) || Array.isArray(attrs)) {
			children = attrs;
			attrs = null;
		}
		const el = document.createElement(tag);
		for (const k in (attrs || {})) {
			const v = attrs[k];
			if (!Object.prototype.hasOwnProperty.call(attrs, k) || v == null)
				continue;
			if (typeof v == 'function')
				el.addEventListener(k, v);
			else if (typeof v == 'object')
				el.setAttribute(k, JSON.stringify(v));
			else
				el.setAttribute(k, v);
		}
		append(el, children);
		return el;
	}

	function append(el, c) {
		if (Array.isArray(c)) {
			for (const x of c)
				el.appendChild(x instanceof Node ? x : document.createTextNode('' + x));
		}
		else if (typeof c == 'function')
			append(el, c(el));
		else if (c instanceof Node)
			el.appendChild(c);
		else if (c != null)
			el.innerHTML = '' + c;
	}
	window.E = E;

	/* Classes: Base.extend(proto), as LuCI's baseclass. */
	function extend(base, proto) {
		function C() {
			if (typeof this.__init__ == 'function')
				this.__init__.apply(this, arguments);
		}
		C.prototype = Object.create(base.prototype);
		Object.assign(C.prototype, proto);
		C.prototype.constructor = C;
		C.extend = (p) => extend(C, p);
		return C;
	}
	function Base() {}
	const baseclass = { extend: (p) => extend(Base, p) };

	/* Pending asynchronous work (rpc calls), so the test can wait for it. */
	let pending = 0;
	function track(p) {
		pending++;
		return p.finally(() => { pending--; });
	}
	function idle() {
		return new Promise((resolve) => {
			const check = () => (pending == 0) ? setTimeout(() => pending == 0 ? resolve() : check(), 0)
				: setTimeout(check, 5);
			check();
		});
	}

	/* rpc */
	const statusText = [ 'Command OK', 'Invalid command', 'Invalid argument', 'Method not found',
		'Resource not found', 'No data received', 'Permission denied', 'Request timeout',
		'Not supported', 'Unspecified error', 'Connection lost' ];
	let rpcID = 1;
	const rpc = {
		log: [],
		declare(options) {
			return function() {
				const args = Array.prototype.slice.call(arguments);
				const params = {};
				(options.params || []).forEach((name, i) => { params[name] = args[i]; });
				rpc.log.push({ object: options.object, method: options.method, params: params });
				const msg = { jsonrpc: '2.0', id: rpcID++, method: 'call',
					params: [ '00000000000000000000000000000000', options.object, options.method, params ] };
				return track(fetch('/ubus', { method: 'POST', body: JSON.stringify(msg),
					headers: { 'Content-Type': 'application/json' } })
					.then((r) => r.json())
					.then((reply) => {
						if (reply.error)
							throw new Error('RPC error: ' + reply.error.message);
						const res = reply.result;
						let ret;
						if (options.reject && res[0] !== 0)
							throw new Error(rpc.getStatusText(res[0]));
						ret = (res[0] === 0) ? (res.length > 1 ? res[1] : 0) : res[0];
						if (options.expect) {
							for (const key in options.expect) {
								if (ret != null && key !== '')
									ret = ret[key];
								const want = options.expect[key];
								if (ret == null || (Array.isArray(want) != Array.isArray(ret)) || typeof ret != typeof want)
									ret = want;
								break;
							}
						}
						if (typeof options.filter == 'function')
							ret = options.filter(ret, params);
						return ret;
					}));
			};
		},
		getStatusText(code) {
			return statusText[code] || 'Unknown error code';
		}
	};

	/* poll: functions returning promises, run every interval seconds. */
	const poll = {
		fns: [],
		add(fn, interval) {
			if (!this.fns.some((e) => e.fn === fn))
				this.fns.push({ fn: fn, interval: interval || 5 });
			return true;
		},
		tick() {
			return this.fns.reduce((p, e) => p.then(() => e.fn()), Promise.resolve());
		}
	};

	/* ui */
	const ui = {
		addNotification(title, children, cls) {
			/* As ui.js: the title and the children go in with dom.append's rules. */
			const n = E('div', { 'class': 'alert-message ' + (cls || '') });
			if (title != null)
				n.appendChild(E('h4', {}, title));
			append(n, children);
			document.getElementById('notifications').appendChild(n);
			return n;
		},
		showModal(title, children) {
			ui.hideModal();
			document.body.appendChild(E('div', { 'id': 'modal_overlay' },
				E('div', { 'class': 'modal' }, [ E('h4', {}, title) ].concat(children))));
		},
		hideModal() {
			const m = document.getElementById('modal_overlay');
			if (m)
				m.remove();
		},
		createHandlerFn(ctx, fn) {
			const extra = Array.prototype.slice.call(arguments, 2);
			const f = (typeof fn == 'string') ? ctx[fn] : fn;
			return function(ev) {
				const btn = ev.currentTarget;
				const res = f.apply(ctx, extra.concat([ ev ]));
				if (res && typeof res.then == 'function') {
					btn.disabled = true;
					track(Promise.resolve(res).finally(() => { btn.disabled = false; }));
				}
			};
		},
		changes: {
			apply() {
				return rpc.declare({ object: 'uci', method: 'apply', params: [ 'rollback', 'timeout' ] })(true, 30);
			}
		}
	};

	/* uci: rpcd's uci object (get, add, set, delete). */
	const uci = {
		state: {},
		changes: {},
		load(conf) {
			return rpc.declare({ object: 'uci', method: 'get', params: [ 'config' ], expect: { values: {} } })(conf)
				.then((values) => { this.state[conf] = values; this.changes[conf] = { add: {}, set: {}, del: {} }; return conf; });
		},
		sections(conf, type) {
			return Object.values(this.state[conf] || {})
				.filter((s) => type == null || s['.type'] == type)
				.sort((a, b) => (a['.index'] || 0) - (b['.index'] || 0));
		},
		get(conf, sid, opt) {
			const s = (this.state[conf] || {})[sid];
			if (s == null)
				return null;
			return (opt == null) ? s : s[opt];
		},
		set(conf, sid, opt, val) {
			const s = this.state[conf][sid];
			const c = this.changes[conf];
			if (val == null || val === '' || (Array.isArray(val) && !val.length))
				return this.unset(conf, sid, opt);
			s[opt] = val;
			(c.set[sid] = c.set[sid] || {})[opt] = val;
			if (c.del[sid])
				c.del[sid] = c.del[sid].filter((o) => o != opt);
		},
		unset(conf, sid, opt) {
			const s = this.state[conf][sid];
			const c = this.changes[conf];
			if (s[opt] === undefined)
				return;
			delete s[opt];
			if (c.set[sid])
				delete c.set[sid][opt];
			(c.del[sid] = c.del[sid] || []).push(opt);
		},
		add(conf, type, name) {
			const sid = name || ('new' + Object.keys(this.state[conf]).length);
			this.state[conf][sid] = { '.name': sid, '.type': type, '.anonymous': !name, '.index': 1000 };
			this.changes[conf].add[sid] = { type: type, name: name };
			return sid;
		},
		remove(conf, sid) {
			delete this.state[conf][sid];
			this.changes[conf].del[sid] = true;
		},
		save() {
			const calls = [];
			const call = (method, args) => rpc.declare({ object: 'uci', method: method,
				params: Object.keys(args) }).apply(null, Object.values(args));
			for (const conf in this.changes) {
				const c = this.changes[conf];
				for (const sid in c.add)
					calls.push(call('add', { config: conf, type: c.add[sid].type, name: c.add[sid].name, values: c.set[sid] || {} }));
				for (const sid in c.set)
					if (!c.add[sid] && Object.keys(c.set[sid]).length)
						calls.push(call('set', { config: conf, section: sid, values: c.set[sid] }));
				for (const sid in c.del)
					calls.push(c.del[sid] === true ? call('delete', { config: conf, section: sid })
						: call('delete', { config: conf, section: sid, options: c.del[sid] }));
				this.changes[conf] = { add: {}, set: {}, del: {} };
			}
			return Promise.all(calls);
		}
	};

	/* Datatypes: a parser of LuCI's datatype expressions and the types the views use. */
	function parseType(code) {
		let pos = 0;
		function expr() {
			const m = /^\s*("[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|[a-zA-Z_][a-zA-Z0-9_]*)\s*/.exec(code.slice(pos));
			if (!m)
				throw new SyntaxError('bad datatype ' + code);
			pos += m[0].length;
			const tok = m[1];
			if (/^["']/.test(tok))
				return tok.slice(1, -1);
			if (/^-?\d/.test(tok))
				return +tok;
			const node = { name: tok, args: [] };
			if (code[pos] == '(') {
				pos++;
				while (code[pos] != ')') {
					node.args.push(expr());
					if (code[pos] == ',')
						pos++;
					else if (code[pos] != ')')
						throw new SyntaxError('bad datatype ' + code);
				}
				pos++;
			}
			if (!types[tok])
				throw new SyntaxError('unknown datatype ' + tok);
			return node;
		}
		const t = expr();
		if (pos != code.length)
			throw new SyntaxError('bad datatype ' + code);
		return t;
	}

	function ip4(s) {
		const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
		return !!m && m.slice(1).every((x) => +x <= 255);
	}
	function ip6(s) {
		if (!/^[0-9a-fA-F:.]+$/.test(s) || (s.match(/::/g) || []).length > 1)
			return false;
		let groups = s.split(':');
		if (/\./.test(groups[groups.length - 1])) {
			if (!ip4(groups.pop()))
				return false;
			groups.push('0', '0');
		}
		const empty = s.includes('::');
		groups = groups.filter((g) => g !== '');
		return groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g)) && (empty ? groups.length < 8 : groups.length == 8);
	}
	function withMask(v, nomask, max, addr) {
		const [ a, p, extra ] = v.split('/');
		if (extra !== undefined || (nomask && p !== undefined))
			return false;
		return addr(a) && (p === undefined || (/^\d{1,3}$/.test(p) && +p <= max));
	}
	const num = (v) => (/^-?\d+(\.\d+)?$/.test(v) ? +v : NaN);
	const types = {
		integer: (v) => [ /^-?\d+$/.test(v), 'valid integer value' ],
		uinteger: (v) => [ /^\d+$/.test(v), 'positive integer value' ],
		range: (v, a, b) => [ num(v) >= a && num(v) <= b, 'value between %d and %d'.format(a, b) ],
		min: (v, a) => [ num(v) >= a, 'value greater or equal to %d'.format(a) ],
		max: (v, a) => [ num(v) <= a, 'value smaller or equal to %d'.format(a) ],
		port: (v) => [ /^\d+$/.test(v) && +v <= 65535, 'valid port value' ],
		ip4addr: (v, nomask) => [ withMask(v, nomask, 32, ip4), nomask ? 'valid IPv4 address' : 'valid IPv4 address or network' ],
		ip6addr: (v, nomask) => [ withMask(v, nomask, 128, ip6), nomask ? 'valid IPv6 address' : 'valid IPv6 address or prefix' ],
		ipaddr: (v, nomask) => [ withMask(v, nomask, 32, ip4) || withMask(v, nomask, 128, ip6),
			nomask ? 'valid IP address' : 'valid IP address or prefix' ],
		maxlength: (v, n) => [ new Blob([ v ]).size <= n, 'value with at most %d characters'.format(n) ],
		minlength: (v, n) => [ new Blob([ v ]).size >= n, 'value with at least %d characters'.format(n) ],
		uciname: (v) => [ /^[a-zA-Z0-9_]+$/.test(v), 'valid UCI identifier' ],
		netdevname: (v) => [ v != '.' && v != '..' && /^[^:\/%\s]{1,15}$/.test(v),
			'valid network device name between 1 and 15 characters not containing ":", "/", "%" or spaces' ]
	};
	function check(node, v) {
		if (node.name == 'and') {
			for (const a of node.args) {
				const r = check(a, v);
				if (!r[0])
					return r;
			}
			return [ true ];
		}
		if (node.name == 'or') {
			const errs = [];
			for (const a of node.args) {
				const r = check(a, v);
				if (r[0])
					return r;
				errs.push(r[1]);
			}
			return [ false, 'One of the following: ' + errs.join(', ') ];
		}
		return types[node.name].apply(null, [ v ].concat(node.args));
	}
	types.and = types.or = () => [ true ];

	/* form */
	const form = {};
	let widgetID = 0;

	const AbstractValue = extend(Base, {
		__init__(map, section, option, title, description) {
			Object.assign(this, { map: map, section: section, option: option, title: title || option,
				description: description || '', rmempty: true, optional: false, widgets: {} });
		},
		/*
		 * As form.js: each call adds an alternative (field == value, or an
		 * object of fields that must all match); an option with
		 * alternatives is active when one of them holds. An inactive
		 * option is hidden, not validated, and removed on save.
		 */
		depends(field, value) {
			(this.deps = this.deps || []).push((typeof field == 'object') ? field : { [field]: value });
		},
		isActive(sid) {
			if (!this.deps || !this.deps.length)
				return true;
			return this.deps.some((d) => Object.keys(d).every((k) => {
				const v = this.section.formvalue(sid, k);
				return String(v == null ? '' : v) === String(d[k]);
			}));
		},
		remove(sid) {
			if (uci.get(this.map.config, sid, this.option) != null)
				uci.unset(this.map.config, sid, this.option);
		},
		validate(section_id, value) {
			return true;
		},
		cfgvalue(sid) {
			return uci.get(this.map.config, sid, this.option);
		},
		value(key, label) {
			(this.keylist = this.keylist || []).push([ key, label || key ]);
		},
		/* [ok, message] for one value, as LuCI's Validator: empty, datatype, then validate(). */
		checkValue(sid, v) {
			if (v == null || v === '')
				return (this.optional || this.rmempty) ? [ true ] : [ false, 'Expecting: non-empty value' ];
			if (this.datatype) {
				const r = check(parseType(this.datatype), v);
				if (!r[0])
					return [ false, 'Expecting: ' + r[1] ];
			}
			const r = this.validate(sid, v);
			return (r === true) ? [ true ] : [ false, String(r) ];
		},
		/* Marks the inputs of sid valid or not; returns the first error. */
		checkWidget(sid) {
			const w = this.widgets[sid];
			if (!w)
				return null;
			let err = null;
			for (const input of w.inputs()) {
				const r = this.checkValue(sid, input.value);
				input.classList.toggle('cbi-input-invalid', !r[0]);
				input.title = r[0] ? '' : r[1];
				if (!r[0] && err == null)
					err = r[1];
			}
			if (w.isEmpty && w.isEmpty() && !(this.optional || this.rmempty))
				err = 'Expecting: non-empty value';
			w.error.textContent = err || '';
			w.node.classList.toggle('cbi-value-invalid', err != null);
			return err;
		},
		formvalue(sid) {
			const w = this.widgets[sid];
			return w ? w.value() : this.cfgvalue(sid);
		},
		renderWidget(sid) {
			const cur = this.cfgvalue(sid);
			const input = E('input', { 'type': this.password ? 'password' : 'text', 'class': 'cbi-input-text',
				'id': 'widget.%d'.format(widgetID++), 'data-option': this.option, 'placeholder': this.placeholder,
				'value': cur != null ? cur : (this.default != null ? this.default : '') });
			input.addEventListener('input', () => this.checkWidget(sid));
			return { node: input, inputs: () => [ input ], value: () => input.value.trim() };
		},
		render(sid) {
			const w = this.renderWidget(sid);
			w.error = E('div', { 'class': 'cbi-value-error' });
			w.node = E('div', { 'class': 'cbi-value-field', 'data-name': this.option }, [ w.node, w.error ]);
			this.widgets[sid] = w;
			return w.node;
		},
		write(sid) {
			const v = this.formvalue(sid);
			const cur = this.cfgvalue(sid);
			/* Unchanged, or the default left alone: nothing to write. */
			if (JSON.stringify(v) === JSON.stringify(cur != null ? cur : (this.default != null ? this.default : (Array.isArray(v) ? [] : ''))))
				return;
			if ((v === '' || (Array.isArray(v) && !v.length)) && this.rmempty)
				uci.unset(this.map.config, sid, this.option);
			else
				uci.set(this.map.config, sid, this.option, v);
		}
	});

	form.Value = AbstractValue.extend({});

	form.Flag = AbstractValue.extend({
		__init__() {
			AbstractValue.prototype.__init__.apply(this, arguments);
			this.enabled = '1';
			this.disabled = '0';
		},
		renderWidget(sid) {
			const cur = this.cfgvalue(sid);
			const on = (cur != null ? cur : this.default) == this.enabled;
			const input = E('input', { 'type': 'checkbox', 'class': 'cbi-input-checkbox', 'data-option': this.option, 'checked': on ? '' : null });
			return { node: input, inputs: () => [], value: () => input.checked ? this.enabled : this.disabled };
		},
		write(sid) {
			const v = this.formvalue(sid);
			const cur = this.cfgvalue(sid);
			if (v === (cur != null ? cur : this.default))
				return;
			if (this.rmempty && v == this.disabled)
				uci.unset(this.map.config, sid, this.option);
			else
				uci.set(this.map.config, sid, this.option, v);
		}
	});

	form.ListValue = AbstractValue.extend({
		renderWidget(sid) {
			const cur = this.cfgvalue(sid);
			const sel = E('select', { 'class': 'cbi-input-select', 'data-option': this.option },
				(this.keylist || []).map((kv) => E('option', { 'value': kv[0],
					'selected': kv[0] == (cur != null ? cur : (this.default || '')) ? '' : null }, kv[1])));
			return { node: sel, inputs: () => [], value: () => sel.value };
		}
	});

	form.DynamicList = AbstractValue.extend({
		cfgvalue(sid) {
			const v = uci.get(this.map.config, sid, this.option);
			return v == null ? [] : (Array.isArray(v) ? v : [ v ]);
		},
		renderWidget(sid) {
			const box = E('div', { 'class': 'cbi-dynlist', 'data-option': this.option });
			const addItem = (val) => {
				const input = E('input', { 'type': 'text', 'class': 'cbi-input-text', 'value': val, 'placeholder': this.placeholder });
				input.addEventListener('input', () => this.checkWidget(sid));
				box.appendChild(E('div', { 'class': 'item' }, input));
			};
			this.cfgvalue(sid).forEach(addItem);
			addItem('');
			const inputs = () => Array.from(box.querySelectorAll('input')).filter((i) => i.value.trim() !== '');
			return { node: box, inputs: inputs, isEmpty: () => inputs().length == 0, value: () => inputs().map((i) => i.value.trim()) };
		}
	});

	const AbstractSection = extend(Base, {
		__init__(map) {
			Object.assign(this, { map: map, children: [] });
		},
		option(cls, name, title, description) {
			const o = new cls(this.map, this, name, title, description);
			this.children.push(o);
			return o;
		},
		/*
		 * As form.js: the tabs are an Array that is also indexed by tab
		 * name, so a name that an Array already has (filter, map, sort,
		 * length...) is "already declared".
		 */
		tab(name, title, description) {
			if (this.tabs && this.tabs[name])
				throw 'Tab already declared';
			const entry = { name: name, title: title, description: description, children: [] };
			this.tabs = this.tabs || [];
			this.tabs.push(entry);
			this.tabs[name] = entry;
			this.tab_names = this.tab_names || [];
			this.tab_names.push(name);
		},
		taboption(tabName, cls, name, title, description) {
			if (!this.tabs || !this.tabs[tabName])
				throw 'Associated tab not declared';
			const o = this.option(cls, name, title, description);
			o.tab = tabName;
			this.tabs[tabName].children.push(o);
			return o;
		},
		formvalue(sid, opt) {
			const o = this.children.find((c) => c.option == opt);
			return o ? o.formvalue(sid) : null;
		},
		/* Shows the options whose dependencies hold in sid, hides the others. */
		updateDepends(sid, node) {
			for (const o of this.children) {
				const row = node.querySelector('.cbi-value[data-name="%s"]'.format(o.option));
				if (row)
					row.hidden = !o.isActive(sid);
			}
		},
		renderOptions(sid) {
			const row = (o) => E('div', { 'class': 'cbi-value', 'data-name': o.option, 'hidden': o.isActive(sid) ? null : '' }, [
				E('label', { 'class': 'cbi-value-title' }, o.title),
				o.render(sid),
				o.description ? E('div', { 'class': 'cbi-value-description' }, o.description.replace(/<[^>]+>/g, '')) : ''
			]);
			if (!this.tabs)
				return this.children.map(row);
			return this.tab_names.map((name) => E('fieldset', { 'class': 'cbi-tab', 'data-tab': name },
				[ E('legend', {}, this.tabs[name].title) ].concat(this.tabs[name].children.map(row))));
		},
		renderAdd(name) {
			return E('button', { 'class': 'btn cbi-button-add', 'click': () => {
				uci.add(this.map.config, this.sectiontype, name || undefined);
				this.map.rerender();
			} }, 'Add');
		}
	});

	form.TypedSection = AbstractSection.extend({
		__init__(map, type, title, description) {
			AbstractSection.prototype.__init__.call(this, map);
			Object.assign(this, { sectiontype: type, title: title || '', description: description || '' });
		},
		cfgsections() {
			return uci.sections(this.map.config, this.sectiontype).map((s) => s['.name']);
		},
		render() {
			return E('div', { 'class': 'cbi-section', 'data-section-type': this.sectiontype }, [
				this.title ? E('h3', this.title) : '',
				this.description ? E('div', { 'class': 'cbi-section-descr' }, this.description) : '',
				this.cfgsections().map((sid) => {
					const node = E('div', { 'class': 'cbi-section-node', 'data-section-id': sid },
						[ this.anonymous ? '' : E('h4', [ sid ]) ].concat(this.renderOptions(sid)));
					const update = () => this.updateDepends(sid, node);
					node.addEventListener('input', update);
					node.addEventListener('change', update);
					return node;
				}),
				this.addremove ? this.renderAdd() : ''
			].flat());
		}
	});

	form.NamedSection = AbstractSection.extend({
		__init__(map, name, type, title, description) {
			AbstractSection.prototype.__init__.call(this, map);
			Object.assign(this, { sectionname: name, sectiontype: type, title: title || '', description: description || '' });
		},
		cfgsections() {
			return uci.get(this.map.config, this.sectionname) ? [ this.sectionname ] : [];
		},
		render() {
			const present = this.cfgsections().length > 0;
			return E('div', { 'class': 'cbi-section', 'data-section-type': this.sectiontype }, [
				this.title ? E('h3', this.title) : '',
				this.description ? E('div', { 'class': 'cbi-section-descr' }, this.description) : '',
				present ? E('div', { 'class': 'cbi-section-node', 'data-section-id': this.sectionname }, this.renderOptions(this.sectionname))
					: (this.addremove ? this.renderAdd(this.sectionname) : '')
			]);
		}
	});

	/* A grid: one row per section; editable options inline, the rest as text (edited in a modal in LuCI). */
	form.GridSection = form.TypedSection.extend({
		render() {
			const cols = this.children.filter((o) => !o.modalonly);
			const cell = (o, sid) => {
				if (o.editable)
					return o.render(sid);
				/* LuCI's textvalue(): the value (a list joined by spaces) HTML-escaped, set as markup. */
				let v = o.cfgvalue(sid);
				if (v == null)
					v = o.default;
				if (Array.isArray(v))
					v = v.join(' ');
				return E('div', {}, v != null ? '%h'.format(v) : E('em', 'none'));
			};
			return E('div', { 'class': 'cbi-section cbi-tblsection', 'data-section-type': this.sectiontype }, [
				this.title ? E('h3', this.title) : '',
				this.description ? E('div', { 'class': 'cbi-section-descr' }, this.description) : '',
				E('table', { 'class': 'table cbi-section-table' }, [
					E('tr', { 'class': 'tr table-titles' }, [ this.anonymous ? '' : E('th', { 'class': 'th' }, 'Name') ]
						.concat(cols.map((o) => E('th', { 'class': 'th' }, o.title)), [ E('th', { 'class': 'th' }) ]))
				].concat(this.cfgsections().map((sid) => E('tr', { 'class': 'tr cbi-section-table-row', 'data-sid': sid },
					[ this.anonymous ? '' : E('td', { 'class': 'td' }, E('strong', [ sid ])) ]
						.concat(cols.map((o) => E('td', { 'class': 'td', 'data-name': o.option }, cell(o, sid))), [
							E('td', { 'class': 'td cbi-section-actions' }, [
								E('button', { 'class': 'btn cbi-button-edit', 'title': 'Edit' }, 'Edit'), ' ',
								E('button', { 'class': 'btn cbi-button-remove', 'click': () => {
									uci.remove(this.map.config, sid);
									this.map.rerender();
								} }, 'Delete') ])
						]))))),
				this.addremove ? this.renderAdd() : ''
			]);
		}
	});

	form.Map = extend(Base, {
		__init__(config, title, description) {
			Object.assign(this, { config: config, title: title, description: description, sections: [] });
		},
		section(cls) {
			const s = new (Function.prototype.bind.apply(cls, [ null, this ].concat(Array.prototype.slice.call(arguments, 1))))();
			this.sections.push(s);
			return s;
		},
		load() {
			return uci.load(this.config);
		},
		renderContents() {
			return [ E('h2', this.title), E('div', { 'class': 'cbi-map-descr' }, this.description) ]
				.concat(this.sections.map((s) => s.render()));
		},
		rerender() {
			this.node.replaceChildren.apply(this.node, this.renderContents());
		},
		render() {
			return this.load().then(() => {
				this.node = E('div', { 'class': 'cbi-map', 'id': 'cbi-' + this.config }, this.renderContents());
				this.node.__map = this;
				return this.node;
			});
		},
		/* Validates every rendered option, then writes the changes and saves (rpcd uci set/add/delete). */
		save() {
			const errors = [];
			for (const s of this.sections)
				for (const sid of s.cfgsections())
					for (const o of s.children) {
						const err = o.isActive(sid) ? o.checkWidget(sid) : null;
						if (err != null)
							errors.push('%s: %s'.format(o.title, err));
					}
			if (errors.length) {
				ui.addNotification(null, E('p', 'Unable to save contents: ' + errors.join('; ')), 'error');
				return Promise.reject(new Error(errors.join('; ')));
			}
			for (const s of this.sections)
				for (const sid of s.cfgsections())
					for (const o of s.children)
						if (o.widgets[sid])
							o.isActive(sid) ? o.write(sid) : o.remove(sid);
			return uci.save().then(() => this.load()).then(() => this.rerender());
		}
	});

	/* view */
	const View = extend(Base, {
		load() {
			return Promise.resolve();
		},
		render() {},
		handleSave(ev) {
			return Promise.all(Array.from(document.querySelectorAll('#maincontent .cbi-map'))
				.filter((n) => n.__map).map((n) => n.__map.save()));
		},
		handleSaveApply(ev) {
			return this.handleSave(ev).then(() => ui.changes.apply());
		},
		handleReset(ev) {
			return Promise.resolve();
		},
		/* The footer LuCI adds below every view with a save handler. */
		addFooter() {
			const btn = (cls, label, fn) => E('button', { 'class': 'btn ' + cls, 'data-action': label,
				'click': ui.createHandlerFn(this, (ev) => fn.call(this, ev).catch(() => {})) }, label);
			return E('div', { 'class': 'cbi-page-actions' }, [
				this.handleSaveApply ? btn('cbi-button-apply', 'Save & Apply', this.handleSaveApply) : '', ' ',
				this.handleSave ? btn('cbi-button-save', 'Save', this.handleSave) : '', ' ',
				this.handleReset ? btn('cbi-button-reset', 'Reset', this.handleReset) : ''
			]);
		}
	});
	const view = { extend: (p) => extend(View, p) };

	const modules = { baseclass: baseclass, view: view, rpc: rpc, poll: poll, ui: ui, uci: uci, form: form };

	/* L.require: built-in modules above, anything else from /luci-static/resources as LuCI loads classes. */
	const L = {
		env: {},
		bind(fn, ctx) {
			const extra = Array.prototype.slice.call(arguments, 2);
			return function() { return fn.apply(ctx, extra.concat(Array.prototype.slice.call(arguments))); };
		},
		resolveDefault(p, def) {
			return Promise.resolve(p).catch(() => def);
		},
		idle: idle,
		require(name) {
			if (modules[name])
				return Promise.resolve(modules[name]);
			const url = '/luci-static/resources/' + name.replace(/\./g, '/') + '.js';
			return track(fetch(url).then((r) => {
				if (!r.ok)
					throw new Error('%s: HTTP %d'.format(url, r.status));
				return r.text();
			}).then((src) => {
				const deps = [];
				const re = /^[ \t]*(['"])require[ \t]+(\S+)(?:[ \t]+as[ \t]+([a-zA-Z_]\S*))?\1[ \t]*;?[ \t]*$/mg;
				for (let m; (m = re.exec(src)) != null;)
					deps.push([ m[2], m[3] || m[2].replace(/\./g, '_') ]);
				return Promise.all(deps.map((d) => L.require(d[0]))).then((mods) => {
					const factory = new Function([ 'window', 'document', 'L' ].concat(deps.map((d) => d[1])).join(','),
						src + '\n//# sourceURL=' + url);
					const cls = factory.apply(window, [ window, document, L ].concat(mods));
					modules[name] = cls;
					return cls;
				});
			}));
		}
	};
	window.L = L;
})(window);
