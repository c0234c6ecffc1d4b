/*!
 * notifmoo.js: the Notif script-tag client, served by Switchboard at /notifmoo.js.
 *
 *   <script src="https://your-server/notifmoo.js?apikey=KEY"></script>
 *
 * Reads `apikey` / `api_key` and `host` (any case) from its own src; `host` defaults to the
 * origin of that src. Connects to <host>/ws?api_key=KEY at once and exposes `NotifMoo`.
 * Beyond the original: subscribe() before the socket opens is queued; a lost connection is
 * re-opened with capped exponential backoff and jitter, and every channel is subscribed again;
 * onConnect callbacks run once per page, so handlers registered in them never double; the same
 * onMessage function given twice for a channel is kept once.
 */
(function (global) {
  'use strict';

  if (global.NotifMoo && global.NotifMoo.__switchboard) {
    return; // loaded twice: keep the first instance and its connection
  }

  var BACKOFF_BASE_MS = 500;
  var BACKOFF_CAP_MS = 30000;

  function findScript() {
    var current = global.document && global.document.currentScript;
    if (current && current.src) {
      return current;
    }
    var scripts = global.document ? global.document.getElementsByTagName('script') : [];
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/notifmoo\.js(?:[?#]|$)/i.test(scripts[i].src || '')) {
        return scripts[i];
      }
    }
    return null;
  }

  function readConfig(script) {
    var cfg = { key: '', host: '' };
    if (!script || !script.src) {
      return cfg;
    }
    var url;
    try {
      url = new URL(script.src, global.location && global.location.href);
    } catch (e) {
      return cfg;
    }
    url.searchParams.forEach(function (value, name) {
      var n = name.toLowerCase();
      if ((n === 'apikey' || n === 'api_key') && !cfg.key) {
        cfg.key = value;
      } else if (n === 'host' && !cfg.host) {
        cfg.host = value;
      }
    });
    if (!cfg.host) {
      cfg.host = url.origin;
    }
    return cfg;
  }

  function socketUrl(host, key) {
    // Notif documented hosts ending in /ws; the path is added here, so drop it.
    var base = String(host).replace(/\/+$/, '').replace(/\/ws$/i, '');
    if (/^https:/i.test(base)) {
      base = 'wss:' + base.slice(6);
    } else if (/^http:/i.test(base)) {
      base = 'ws:' + base.slice(5);
    } else if (!/^wss?:/i.test(base)) {
      var secure = global.location && global.location.protocol === 'https:';
      base = (secure ? 'wss://' : 'ws://') + base;
    }
    return base + '/ws?api_key=' + encodeURIComponent(key);
  }

  // One failing handler must not stop the others; its error still reaches the console.
  function safeCall(fn, arg) {
    try {
      fn(arg);
    } catch (e) {
      setTimeout(function () {
        throw e;
      });
    }
  }

  function addOnce(list, fn) {
    if (typeof fn === 'function' && list.indexOf(fn) < 0) {
      list.push(fn);
    }
  }

  var cfg = readConfig(findScript());
  var socket = null;
  var socketId = null;
  var readyState = 'closed';
  var wanted = false; // connect() was called and disconnect() was not
  var attempts = 0;
  var retryTimer = null;
  var channels = {}; // name -> { auth, channelData, callbacks: [] }: the queue and the resubscribe list
  var binds = {}; // event name or '*' -> [callback]
  var connectCbs = [];
  var connectedOnce = false;
  var errorCbs = [];
  var successCbs = {}; // channel -> [callback]

  function emit(name, payload) {
    var list = (binds[name] || []).slice();
    for (var i = 0; i < list.length; i++) {
      safeCall(list[i], payload);
    }
  }

  function emitError(err) {
    var list = errorCbs.slice();
    for (var i = 0; i < list.length; i++) {
      safeCall(list[i], err);
    }
  }

  function send(frame) {
    if (socket && socket.readyState === 1) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  // Sends a subscribe once the socket id is known (auth signs it). `auth` may be a string or a
  // function (socketId, channel) returning a string or a promise of one, so private channels
  // can be signed again after a reconnect.
  function sendSubscribe(name) {
    var ch = channels[name];
    if (!ch || !socketId) {
      return;
    }
    var sid = socketId;
    var auth = ch.auth;
    var finish = function (signed) {
      if (socketId !== sid || channels[name] !== ch) {
        return; // reconnected or unsubscribed meanwhile
      }
      var data = { channel: name };
      if (signed !== undefined && signed !== null) {
        data.auth = signed;
      }
      if (ch.channelData !== undefined && ch.channelData !== null) {
        data.channel_data = ch.channelData;
      }
      send({ event: 'subscribe', data: data });
    };
    if (typeof auth === 'function') {
      Promise.resolve()
        .then(function () {
          return auth(sid, name);
        })
        .then(finish, function (e) {
          emitError({ message: 'auth for ' + name + ' failed: ' + (e && e.message ? e.message : String(e)), code: null });
        });
    } else {
      finish(auth);
    }
  }

  function scheduleReconnect(immediate) {
    if (!wanted || retryTimer) {
      return;
    }
    var delay = immediate ? 0 : Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, attempts));
    attempts += 1;
    // Jitter (half to full delay) so a restarted server is not hit by every page at once.
    delay = Math.round(delay / 2 + Math.random() * (delay / 2)) + (immediate ? Math.random() * 250 : 0);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      open();
    }, delay);
  }

  function onFrame(ev) {
    var msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      emit('*', { raw: ev.data });
      return;
    }
    if (!msg || typeof msg !== 'object') {
      emit('*', { raw: ev.data });
      return;
    }
    var event = msg.event;
    var data = msg.data;
    if (event === 'connection_established') {
      if (!data || typeof data !== 'object' || !data.socket_id) {
        return;
      }
      socketId = data.socket_id;
      attempts = 0;
      emit('connection_established', { socket_id: socketId });
      for (var name in channels) {
        if (Object.prototype.hasOwnProperty.call(channels, name)) {
          sendSubscribe(name);
        }
      }
      if (!connectedOnce) {
        connectedOnce = true;
        var cbs = connectCbs.slice();
        connectCbs = [];
        for (var i = 0; i < cbs.length; i++) {
          safeCall(cbs[i]);
        }
      }
      return;
    }
    if (event === 'pusher_internal:subscription_succeeded') {
      var list = (successCbs[msg.channel] || []).slice();
      for (var j = 0; j < list.length; j++) {
        safeCall(list[j], data || {});
      }
      emit('subscription_succeeded', { channel: msg.channel, data: data || {} });
      return;
    }
    if (event === 'pusher:error') {
      var err = { message: data && data.message, code: data && data.code };
      if (msg.channel) {
        err.channel = msg.channel;
      }
      emitError(err);
      emit('pusher:error', err);
      return;
    }
    var payload = { event: event, channel: msg.channel || '', data: data };
    emit(event, payload);
    emit('*', payload);
    var ch = channels[payload.channel];
    if (ch) {
      var handlers = ch.callbacks.slice();
      for (var k = 0; k < handlers.length; k++) {
        safeCall(handlers[k], payload);
      }
    }
  }

  function open() {
    if (socket) {
      return;
    }
    if (!cfg.key) {
      readyState = 'error';
      emitError({ message: 'notifmoo: no apikey in the script src', code: null });
      return;
    }
    readyState = 'connecting';
    var ws;
    try {
      ws = new global.WebSocket(socketUrl(cfg.host, cfg.key));
    } catch (e) {
      readyState = 'error';
      emitError({ message: 'WebSocket error: ' + (e && e.message ? e.message : String(e)), code: null });
      scheduleReconnect(false);
      return;
    }
    socket = ws;
    ws.onopen = function () {
      if (ws === socket) {
        readyState = 'connected';
      }
    };
    ws.onmessage = function (ev) {
      if (ws === socket) {
        onFrame(ev);
      }
    };
    ws.onerror = function () {
      if (ws === socket) {
        readyState = 'error';
        emitError({ message: 'WebSocket error' });
      }
    };
    ws.onclose = function (ev) {
      if (ws !== socket) {
        return;
      }
      socket = null;
      socketId = null;
      readyState = 'closed';
      // 4000–4099 mean "do not retry as is" (app disabled, …); 4200–4299 "reconnect now".
      var code = ev && ev.code;
      if (code >= 4000 && code < 4100) {
        return;
      }
      scheduleReconnect(code >= 4200 && code < 4300);
    };
  }

  function connect() {
    wanted = true;
    if (retryTimer) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    open();
    return api;
  }

  function disconnect() {
    wanted = false;
    if (retryTimer) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    var ws = socket;
    socket = null;
    socketId = null;
    readyState = 'closed';
    if (ws) {
      ws.close(1000);
    }
    return api;
  }

  function subscribe(channel, opts) {
    opts = opts || {};
    var ch = channels[channel];
    if (!ch) {
      ch = channels[channel] = { auth: undefined, channelData: undefined, callbacks: [] };
    }
    if ('auth' in opts) {
      ch.auth = opts.auth;
    }
    if ('channelData' in opts) {
      ch.channelData = opts.channelData;
    }
    addOnce(ch.callbacks, opts.onMessage);
    sendSubscribe(channel); // no-op until connected; connection_established sends it then
    return api;
  }

  function unsubscribe(channel) {
    if (channels[channel]) {
      delete channels[channel];
      send({ event: 'unsubscribe', data: { channel: channel } });
    }
    return api;
  }

  function bind(event, cb) {
    addOnce(binds[event] || (binds[event] = []), cb);
    return api;
  }

  function unbind(event, cb) {
    if (!binds[event]) {
      return api;
    }
    if (cb === undefined) {
      delete binds[event];
    } else {
      binds[event] = binds[event].filter(function (f) {
        return f !== cb;
      });
    }
    return api;
  }

  function onConnect(cb) {
    if (typeof cb !== 'function') {
      return api;
    }
    if (connectedOnce) {
      safeCall(cb);
    } else {
      addOnce(connectCbs, cb);
    }
    return api;
  }

  function onError(cb) {
    addOnce(errorCbs, cb);
    return api;
  }

  function onSubscriptionSucceeded(channel, cb) {
    addOnce(successCbs[channel] || (successCbs[channel] = []), cb);
    return api;
  }

  var api = {
    __switchboard: true,
    connect: connect,
    disconnect: disconnect,
    subscribe: subscribe,
    unsubscribe: unsubscribe,
    bind: bind,
    unbind: unbind,
    onConnect: onConnect,
    onError: onError,
    onSubscriptionSucceeded: onSubscriptionSucceeded,
  };
  Object.defineProperty(api, 'socketId', {
    get: function () {
      return socketId;
    },
  });
  Object.defineProperty(api, 'apikey', {
    get: function () {
      return cfg.key;
    },
  });
  Object.defineProperty(api, 'readyState', {
    get: function () {
      return readyState;
    },
  });

  global.NotifMoo = api;

  // Back online after a network loss: try at once instead of waiting out the backoff.
  if (global.addEventListener) {
    global.addEventListener('online', function () {
      if (wanted && !socket) {
        if (retryTimer) {
          clearTimeout(retryTimer);
          retryTimer = null;
        }
        open();
      }
    });
  }

  if (cfg.key) {
    connect();
  }
})(typeof window !== 'undefined' ? window : this);
