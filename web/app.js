// The browser client of chat-server: written by hand, no framework, no build step.
// It speaks the native protocol (PROTOCOL.md) over the WebSocket at /ws, one frame per message.
// Every text from the network is rendered with textContent: nothing it says becomes markup.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_DOM_MESSAGES = 400;   // messages rendered at once; the rest are kept in memory
const PAGE = 100;               // messages asked for when scrolling up or down
const store = window.localStorage;

const state = {
  socket: null,
  me: null,            // name from welcome
  account: false,
  credentials: null,   // {name, password, accountPassword, register} for reconnecting
  nextId: 1,
  pending: new Map(),  // request id -> callback(frame)
  conversations: new Map(), // key ("#room" or "@user") -> conversation
  active: null,
  backoff: 0,
  reconnectTimer: null,
  signedOut: false,
};

/// A conversation's key: "#room", or "@name" in lower case (user names are case-insensitive).
function norm(key) { return key[0] === "@" ? key.toLowerCase() : key; }

function conversation(spelledKey) {
  const key = norm(spelledKey);
  let c = state.conversations.get(key);
  if (!c) {
    c = {
      key, isRoom: key.startsWith("#"), name: spelledKey.slice(1),
      messages: [], ids: new Set(), hasOlder: true, loadingOlder: false,
      members: [], unread: 0, mentions: 0, joined: false,
      lastRead: Number(store.getItem(readKey(key)) || 0),
      window: { start: 0, end: 0 }, atBottom: true, unreadLineBefore: null,
    };
    state.conversations.set(key, c);
  }
  return c;
}

function readKey(key) { return "chat.read." + (state.me || "").toLowerCase() + "." + key; }

// MARK: Connection

function connect() {
  clearTimeout(state.reconnectTimer);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/ws");
  state.socket = socket;
  socket.onmessage = (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    handle(frame);
  };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    state.socket = null;
    for (const c of state.conversations.values()) c.joined = false;
    state.pending.clear();
    if (state.signedOut || !state.credentials) { showStatus("Disconnected."); return; }
    const delay = Math.min(15000, 500 * 2 ** state.backoff) * (0.75 + Math.random() / 2);
    state.backoff = Math.min(state.backoff + 1, 6);
    showStatus("Connection lost. Reconnecting in " + Math.ceil(delay / 1000) + " s…");
    state.reconnectTimer = setTimeout(connect, delay);
  };
}

function send(frame, onAnswer) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return false;
  if (onAnswer) {
    frame.id = state.nextId++;
    state.pending.set(frame.id, onAnswer);
  }
  state.socket.send(JSON.stringify(frame));
  return true;
}

function handle(frame) {
  if (frame.re !== undefined && state.pending.has(frame.re)) {
    const callback = state.pending.get(frame.re);
    state.pending.delete(frame.re);
    callback(frame);
    if (frame.type !== "message") return;
  }
  switch (frame.type) {
    case "greeting":
      $("server-name").textContent = frame.server;
      $("server-password-row").hidden = !frame.password_required;
      if (state.credentials) login(state.credentials);
      break;
    case "message": receive(frame); break;
    case "presence": presence(frame); break;
    case "history": if (frame.room && frame.re === undefined) replayed(conversation("#" + frame.room), frame); break;
    case "ping": send({ type: "pong" }); break;
    case "shutdown": showStatus("The server is restarting (" + frame.reason + ")."); break;
    case "error": if (frame.re === undefined) notice(frame.message); break;
  }
}

// MARK: Login

function login(credentials) {
  const frame = { type: "login", name: credentials.name };
  if (credentials.serverPassword) frame.password = credentials.serverPassword;
  if (credentials.accountPassword && !credentials.register) frame.account_password = credentials.accountPassword;
  send(frame, (answer) => {
    if (answer.type !== "welcome") {
      if (state.me && answer.code === "name_taken") {
        // A reconnect that came before the server let the old connection go: try again soon.
        state.socket.close();
        return;
      }
      state.credentials = null;
      showLoginError(answer.message || "Login failed.");
      showLogin();
      return;
    }
    welcomed(answer, credentials);
  });
}

function welcomed(welcome, credentials) {
  state.me = welcome.name;
  state.account = !!welcome.account;
  state.backoff = 0;
  store.setItem("chat.name", welcome.name);
  $("me-name").textContent = welcome.name + (state.account ? "" : " (guest)");
  hideStatus();
  showChat();
  if (credentials.register && credentials.accountPassword) {
    send({ type: "register", password: credentials.accountPassword }, (answer) => {
      if (answer.type === "registered") {
        state.account = true;
        credentials.register = false;
        $("me-name").textContent = welcome.name;
        notice("Registered: the name " + welcome.name + " is yours now.");
      } else {
        notice("Not registered: " + answer.message);
      }
    });
  }
  const rooms = [...state.conversations.values()].filter((c) => c.isRoom).map((c) => c.name);
  if (rooms.length === 0) rooms.push(...(savedRooms().length ? savedRooms() : [welcome.default_room]));
  for (const room of rooms) join(room, rooms.length === 1 || ("#" + room) === state.active);
  for (const c of state.conversations.values()) if (!c.isRoom) catchUpDirect(c);
  if (state.account) loadConversations();
  if (welcome.motd && !state.active) notice(welcome.motd);
}

function savedRooms() {
  try { return JSON.parse(store.getItem("chat.rooms." + (state.me || "").toLowerCase()) || "[]"); } catch { return []; }
}

function saveRooms() {
  const rooms = [...state.conversations.values()].filter((c) => c.isRoom).map((c) => c.name);
  store.setItem("chat.rooms." + state.me.toLowerCase(), JSON.stringify(rooms));
}

// MARK: Rooms

function join(room, activate) {
  room = room.replace(/^#/, "").toLowerCase();
  const c = conversation("#" + room);
  const frame = { type: "join", room };
  const last = c.messages.length ? c.messages[c.messages.length - 1].id : null;
  if (last !== null) frame.after = last; // a reconnect: exactly what was missed
  send(frame, (answer) => {
    if (answer.type !== "joined") {
      state.conversations.delete(c.key);
      notice("Cannot join #" + room + ": " + answer.message);
      renderSidebar();
      return;
    }
    c.joined = true;
    c.members = answer.members.slice();
    c.awaitingReplay = last === null ? "fresh" : "gap";
    saveRooms();
    renderSidebar();
    if (c.key === state.active) renderMembers();
  });
  if (activate) activate_(c.key);
  renderSidebar();
}

function replayed(c, frame) {
  const kind = c.awaitingReplay;
  c.awaitingReplay = null;
  if (kind === "gap" && frame.more) {
    // More was missed than one replay holds: start again from this replay.
    c.messages = []; c.ids = new Set();
  }
  // A first join may replay only what was missed: older pages are asked for until one says no more.
  if (kind === "fresh" || (kind === "gap" && frame.more)) c.hasOlder = true;
  for (const m of frame.messages) add(c, m, true, true);
  if (c.key === state.active) { showLatest(c); if (c.atBottom) markRead(c); }
  renderSidebar();
  const waiting = c.afterReplay || [];
  c.afterReplay = [];
  waiting.forEach((f) => f());
}

function leave(c) {
  if (c.isRoom) send({ type: "leave", room: c.name }, () => {});
  state.conversations.delete(c.key);
  if (c.isRoom) saveRooms();
  const next = [...state.conversations.keys()][0];
  if (next) activate_(next); else { state.active = null; $("title").textContent = "chat"; $("messages").replaceChildren(); }
  renderSidebar();
}

function presence(frame) {
  const c = state.conversations.get("#" + frame.room);
  if (!c) return;
  if (frame.event === "join" && !c.members.includes(frame.name)) c.members.push(frame.name);
  if (frame.event === "leave") c.members = c.members.filter((n) => n !== frame.name);
  if (c.key === state.active) renderMembers();
  const text = frame.name + (frame.event === "join" ? " joined" : " left") + (frame.reason ? " (" + frame.reason + ")" : "");
  if (c.key === state.active && c.atBottom && c.window.end === c.messages.length) appendLine(systemLine(text, frame.ts));
}

// MARK: Messages

function keyOf(m) {
  if (m.room) return "#" + m.room;
  const other = m.from.toLowerCase() === (state.me || "").toLowerCase() ? m.to : m.from;
  return "@" + other;  // spelled as the server spells it; conversation() folds the key
}

function receive(m) {
  const c = conversation(keyOf(m));
  if (!c.isRoom && !c.listed) { c.listed = true; renderSidebar(); }
  add(c, m, false);
}

/// Adds a message to its conversation's store in id order, once; `quiet`: the caller renders.
function add(c, m, fromHistory, quiet) {
  if (c.ids.has(m.id)) return;
  c.ids.add(m.id);
  const list = c.messages;
  let index = list.length;
  while (index > 0 && list[index - 1].id > m.id) index--;
  list.splice(index, 0, m);
  const mine = m.from.toLowerCase() === (state.me || "").toLowerCase();
  const visible = c.key === state.active && !document.hidden && c.atBottom;
  if (!mine && m.id > c.lastRead && !visible) {
    c.unread++;
    const mention = !c.isRoom || mentions(m.text);
    if (mention) c.mentions++;
    if (!fromHistory && mention && document.hidden) notify(c, m);
  }
  if (quiet) { if (index < c.window.start) { c.window.start++; c.window.end++; } return; }
  if (c.key !== state.active) { renderSidebar(); return; }
  if (index === list.length - 1 && c.window.end === list.length - 1) {
    // The newest message, and the view shows the newest: append it.
    c.window.end++;
    appendLine(messageLine(m));
    trimTop(c);
    if (c.atBottom) { scrollToBottom(); if (!fromHistory) markRead(c); }
  } else if (index < c.window.start) {
    c.window.start++; c.window.end++;
  } else if (index < c.window.end) {
    render(c);
  }
  renderSidebar();
}

let mentionPattern = null;

/// Whether a text names this user as a word (names are letters, digits, `_` and `-`).
function mentions(text) {
  if (!state.me) return false;
  if (!mentionPattern || mentionPattern.name !== state.me) {
    mentionPattern = { name: state.me, regexp: new RegExp("(^|[^A-Za-z0-9_-])" + state.me + "($|[^A-Za-z0-9_-])", "i") };
  }
  return mentionPattern.regexp.test(text);
}

function notify(c, m) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const title = c.isRoom ? m.from + " in #" + c.name : m.from;
  const n = new Notification(title, { body: m.text.slice(0, 200), tag: c.key });
  n.onclick = () => { window.focus(); activate_(c.key); n.close(); };
}

function sendText(text) {
  const c = state.conversations.get(state.active);
  if (!c) { notice("Join a room first: /join lobby"); return; }
  let kind;
  if (text.startsWith("/")) {
    const [command, ...rest] = text.slice(1).split(" ");
    const argument = rest.join(" ").trim();
    switch (command.toLowerCase()) {
      case "me": kind = "action"; text = argument; break;
      case "join": if (argument) join(argument, true); return;
      case "leave": case "part": leave(c); return;
      case "msg": case "query": {
        const [to, ...words] = argument.split(" ");
        if (!to) return notice("Usage: /msg NAME TEXT");
        openDirect(to);
        if (words.length) say({ to, text: words.join(" ") });
        return;
      }
      case "who": toggleMembers(true); return;
      case "rooms": showRoomList(); return;
      case "search": search(argument); return;
      case "help":
        notice("/join ROOM · /leave · /me TEXT · /msg NAME TEXT · /who · /rooms · /search QUERY · Ctrl+K search · Alt+↑/↓ switch");
        return;
      default:
        if (!text.startsWith("//")) { notice("Unknown command /" + command + " (try /help)"); return; }
        text = text.slice(1);
    }
  }
  if (!text.trim()) return;
  const frame = c.isRoom ? { room: c.name, text } : { to: c.name, text };
  if (kind) frame.kind = kind;
  say(frame);
}

function say(frame) {
  frame.type = "say";
  const ok = send(frame, (answer) => {
    if (answer.type === "error") notice("Not sent: " + answer.message + " — “" + frame.text.slice(0, 80) + "”");
  });
  if (!ok) notice("Not connected: the message was not sent.");
}

// MARK: Direct messages

function openDirect(name) {
  const c = conversation("@" + name);
  c.listed = true;
  activate_(c.key);
  if (state.account && c.messages.length === 0) loadOlder(c);
  renderSidebar();
}

function loadConversations() {
  send({ type: "conversations" }, (answer) => {
    if (answer.type !== "conversations") return;
    for (const item of answer.conversations) {
      const c = conversation("@" + item.with);
      c.listed = true;
      if (item.last_id > c.lastRead) c.unread = Math.max(c.unread, 1);
    }
    renderSidebar();
  });
}

function catchUpDirect(c) {
  if (!state.account || c.messages.length === 0) return;
  const last = c.messages[c.messages.length - 1].id;
  send({ type: "history", with: c.name, after: last, limit: 500 }, (answer) => {
    if (answer.type === "history") for (const m of answer.messages) add(c, m, true);
  });
}

// MARK: History

function loadOlder(c, then) {
  if (then) (c.afterOlder ||= []).push(then);
  if (c.loadingOlder) return;
  const done = () => { const waiting = c.afterOlder || []; c.afterOlder = []; waiting.forEach((f) => f()); };
  if (!c.hasOlder || (!c.isRoom && !state.account)) { if (!c.isRoom && !state.account) c.hasOlder = false; done(); return; }
  c.loadingOlder = true;
  const frame = { type: "history", limit: PAGE };
  if (c.isRoom) frame.room = c.name; else frame.with = c.name;
  if (c.messages.length) frame.before = c.messages[0].id;
  send(frame, (answer) => {
    c.loadingOlder = false;
    if (answer.type !== "history") { c.hasOlder = false; done(); return; }
    c.hasOlder = answer.more;
    const added = answer.messages.filter((m) => !c.ids.has(m.id));
    for (const m of added) { c.ids.add(m.id); }
    c.messages = added.concat(c.messages);
    c.window.start += added.length; c.window.end += added.length;
    if (c.key === state.active) extendUp(c, Math.max(0, c.window.start - added.length));
    done();
  });
}

/// Scrolling: the rendered window moves through the stored messages; older ones are fetched
/// when the top of the store is reached.
function onScroll() {
  const c = state.conversations.get(state.active);
  if (!c) return;
  const box = $("messages");
  c.atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  if (box.scrollTop < 200) {
    if (c.window.start > 0) {
      extendUp(c, Math.max(0, c.window.start - PAGE));
    } else {
      loadOlder(c);
    }
  } else if (c.atBottom && c.window.end < c.messages.length) {
    const anchor = firstVisible();
    c.window.end = Math.min(c.messages.length, c.window.end + PAGE);
    c.window.start = Math.max(0, c.window.end - MAX_DOM_MESSAGES);
    render(c, anchor);
  }
  if (c.atBottom && c.window.end === c.messages.length) markRead(c);
}

function markRead(c) {
  if (document.hidden) return;
  const last = c.messages[c.messages.length - 1];
  if (last && last.id > c.lastRead) { c.lastRead = last.id; store.setItem(readKey(c.key), String(last.id)); }
  if (c.unread || c.mentions) { c.unread = 0; c.mentions = 0; renderSidebar(); }
}

// MARK: Search

function search(query) {
  query = query.trim();
  if (!query) return;
  send({ type: "search", query, limit: 50 }, (answer) => {
    const list = $("search-items");
    list.replaceChildren();
    $("search-panel").hidden = false;
    if (answer.type !== "search") { list.append(item("li", "error", answer.message)); return; }
    if (!answer.messages.length) list.append(item("li", "muted", "Nothing found."));
    for (const m of answer.messages) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "result";
      button.dataset.id = m.id;
      button.append(item("span", "where", (m.room ? "#" + m.room : "@" + (m.from === state.me ? m.to : m.from)) + " · " + time(m.ts)),
                    item("span", "nick", m.from), item("span", "text", m.text));
      button.onclick = () => jumpTo(m);
      li.append(button);
      list.append(li);
    }
  });
}

/// Opens the message's conversation with the message in view, its history loaded up to it.
function jumpTo(m) {
  const key = norm(keyOf(m));
  if (m.room && !state.conversations.has(key)) join(m.room, false);
  else if (!m.room) conversation(keyOf(m)).listed = true;
  const c = conversation(key);
  activate_(key);
  const reveal = () => {
    const index = c.messages.findIndex((x) => x.id === m.id);
    if (index < 0) {
      if (c.hasOlder && (!c.messages.length || c.messages[0].id > m.id)) return loadOlder(c, reveal);
      return notice("That message is no longer in the history.");
    }
    c.window.start = Math.max(0, index - MAX_DOM_MESSAGES / 2);
    c.window.end = Math.min(c.messages.length, c.window.start + MAX_DOM_MESSAGES);
    c.highlight = m.id;
    render(c);
    const node = $("messages").querySelector('[data-id="' + m.id + '"]');
    if (node) { node.scrollIntoView({ block: "center" }); node.focus(); }
  };
  // A room being joined: once its replay is in (the history pages need the membership).
  if (c.isRoom && (!c.joined || c.awaitingReplay)) (c.afterReplay ||= []).push(reveal);
  else reveal();
  if (window.matchMedia("(max-width: 700px)").matches) $("search-panel").hidden = true;
}

// MARK: Rendering

function item(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = text;
  return node;
}

// One formatter for every line: making one per call (toLocaleTimeString) cost most of a render.
const TIME_FORMAT = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

function time(ts) {
  const date = new Date(ts);
  return isNaN(date) ? "" : TIME_FORMAT.format(date);
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;

/// Text with http(s) links made clickable: text nodes and anchors only, never parsed markup.
function linkified(text) {
  const span = document.createElement("span");
  span.className = "text";
  if (!text.includes("http")) { span.textContent = text; return span; }
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    span.append(document.createTextNode(text.slice(last, match.index)));
    let url;
    try { url = new URL(match[0]); } catch { url = null; }
    if (url && (url.protocol === "http:" || url.protocol === "https:")) {
      const a = document.createElement("a");
      a.href = url.href;
      a.textContent = match[0];
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      span.append(a);
    } else {
      span.append(document.createTextNode(match[0]));
    }
    last = match.index + match[0].length;
  }
  span.append(document.createTextNode(text.slice(last)));
  return span;
}

function messageLine(m) {
  const line = document.createElement("div");
  line.className = "line" + (m.kind === "action" ? " action" : "") + (mentions(m.text) && m.from !== state.me ? " mention" : "");
  line.dataset.id = m.id;
  line.tabIndex = -1;
  const when = item("time", "ts", time(m.ts));
  when.dateTime = m.ts;
  const nick = item("span", "nick", m.kind === "action" ? "* " + m.from : m.from);
  line.append(when, nick, linkified(m.text));
  return line;
}

function systemLine(text, ts) {
  const line = document.createElement("div");
  line.className = "line system";
  line.append(item("time", "ts", ts ? time(ts) : ""), item("span", "text", text));
  return line;
}

function unreadMarker() {
  const line = item("div", "unread-marker", "New messages");
  line.setAttribute("role", "separator");
  return line;
}

function appendLine(node) {
  const box = $("messages");
  const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.append(node);
  if (stick) scrollToBottom();
}

function trimTop(c) {
  const box = $("messages");
  while (c.window.end - c.window.start > MAX_DOM_MESSAGES && box.firstElementChild) {
    const first = box.firstElementChild;
    if (first.dataset.id) c.window.start++;
    first.remove();
  }
}

function scrollToBottom() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
}

function firstVisible() {
  const box = $("messages");
  const top = box.getBoundingClientRect().top;
  for (const node of box.children) {
    if (node.dataset.id && node.getBoundingClientRect().bottom > top) return { id: node.dataset.id, offset: node.getBoundingClientRect().top - top };
  }
  return null;
}

/// Rebuilds the rendered window, keeping `anchor` (a message and its offset) where it was.
function render(c, anchor) {
  const box = $("messages");
  const fragment = document.createDocumentFragment();
  if (!c.hasOlder && c.window.start === 0) fragment.append(beginningLine(c));
  for (let i = c.window.start; i < c.window.end; i++) appendMessage(fragment, c, c.messages[i]);
  box.replaceChildren(fragment);
  if (anchor) keepInPlace(anchor);
}

/// Renders the stored messages from `start` up to the window above what is shown, and drops as
/// many from the bottom: a page of new lines, not the whole window again.
function extendUp(c, start) {
  const box = $("messages");
  const anchor = firstVisible();
  const fragment = document.createDocumentFragment();
  if (!c.hasOlder && start === 0) fragment.append(beginningLine(c));
  for (let i = start; i < c.window.start; i++) appendMessage(fragment, c, c.messages[i]);
  const beginning = box.querySelector(".beginning");
  if (beginning) beginning.remove();
  box.prepend(fragment);
  c.window.start = start;
  while (c.window.end - c.window.start > MAX_DOM_MESSAGES && box.lastElementChild) {
    const last = box.lastElementChild;
    if (last.dataset.id) c.window.end--;
    last.remove();
  }
  if (anchor) keepInPlace(anchor);
}

function beginningLine(c) {
  const line = systemLine("The beginning of " + (c.isRoom ? "#" + c.name : "your conversation with " + c.name) + ".");
  line.classList.add("beginning");
  return line;
}

function appendMessage(parent, c, m) {
  if (c.unreadLineBefore === m.id) parent.append(unreadMarker());
  const line = messageLine(m);
  if (m.id === c.highlight) line.classList.add("highlight");
  parent.append(line);
}

function keepInPlace(anchor) {
  const box = $("messages");
  const node = box.querySelector('[data-id="' + anchor.id + '"]');
  if (node) box.scrollTop += node.getBoundingClientRect().top - box.getBoundingClientRect().top - anchor.offset;
}

function showLatest(c) {
  c.window.end = c.messages.length;
  c.window.start = Math.max(0, c.window.end - MAX_DOM_MESSAGES);
  const firstUnread = c.messages.find((m) => m.id > c.lastRead && m.from !== state.me);
  c.unreadLineBefore = firstUnread && c.lastRead > 0 ? firstUnread.id : null;
  render(c);
  const marker = $("messages").querySelector(".unread-marker");
  if (marker) marker.scrollIntoView({ block: "start" }); else scrollToBottom();
  onScroll();
  if ($("messages").scrollHeight <= $("messages").clientHeight && c.hasOlder && (c.joined || !c.isRoom)) loadOlder(c);
}

function activate_(key) {
  const c = conversation(key);
  key = c.key;
  state.active = key;
  $("title").textContent = c.isRoom ? "#" + c.name : c.name;
  document.title = (c.isRoom ? "#" + c.name : c.name) + " · chat";
  showLatest(c);
  markRead(c);
  renderSidebar();
  renderMembers();
  if (window.matchMedia("(max-width: 700px)").matches) toggleSidebar(false);
  $("compose-input").focus();
}

function renderSidebar() {
  const rooms = [], dms = [];
  for (const c of state.conversations.values()) {
    if (!c.isRoom && !c.listed) continue;
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "conversation" + (c.key === state.active ? " active" : "") + (c.unread ? " has-unread" : "");
    button.dataset.key = c.key;
    if (c.key === state.active) button.setAttribute("aria-current", "true");
    button.append(item("span", "label", c.isRoom ? "#" + c.name : c.name));
    if (c.mentions) button.append(item("span", "badge mention-badge", String(c.mentions)));
    else if (c.unread) button.append(item("span", "badge", String(c.unread)));
    const unreadText = c.unread ? ", " + c.unread + " unread" + (c.mentions ? ", " + c.mentions + " mentioning you" : "") : "";
    button.setAttribute("aria-label", (c.isRoom ? "room " + c.name : "conversation with " + c.name) + unreadText);
    button.onclick = () => activate_(c.key);
    li.append(button);
    if (c.isRoom) {
      const close = item("button", "icon leave", "✕");
      close.type = "button";
      close.title = "Leave #" + c.name;
      close.setAttribute("aria-label", "Leave room " + c.name);
      close.onclick = () => leave(c);
      li.append(close);
      rooms.push(li);
    } else {
      dms.push(li);
    }
  }
  $("room-items").replaceChildren(...rooms);
  $("dm-items").replaceChildren(...dms);
  const total = [...state.conversations.values()].reduce((sum, c) => sum + c.unread, 0);
  document.title = (total ? "(" + total + ") " : "") + ($("title").textContent || "chat") + " · chat";
}

function renderMembers() {
  const c = state.conversations.get(state.active);
  const list = $("member-items");
  list.replaceChildren(...(c && c.isRoom ? c.members : c ? [state.me, c.name] : []).map((name) => {
    const li = document.createElement("li");
    const button = item("button", "link", name);
    button.type = "button";
    button.title = "Message " + name;
    button.onclick = () => openDirect(name);
    li.append(button);
    return li;
  }));
}

function showRoomList() {
  send({ type: "rooms" }, (answer) => {
    if (answer.type !== "rooms") return;
    $("room-list-items").replaceChildren(...answer.rooms.map((room) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "result";
      button.append(item("span", "nick", "#" + room.name), item("span", "where", room.members + " here · " + room.messages + " messages"));
      button.onclick = () => { $("room-dialog").close(); join(room.name, true); };
      li.append(button);
      return li;
    }));
    $("room-dialog").showModal();
  });
}

function notice(text) {
  appendLine(systemLine(text));
}

function showStatus(text) { $("status").textContent = text; $("status").hidden = false; }
function hideStatus() { $("status").hidden = true; }

function showLogin() {
  $("chat-view").hidden = true;
  $("login-view").hidden = false;
  $("login-submit").disabled = false;
}

function showChat() {
  $("login-view").hidden = true;
  $("chat-view").hidden = false;
}

function showLoginError(text) {
  $("login-error").textContent = text;
  $("login-submit").disabled = false;
}

function toggleSidebar(open) {
  const nav = $("sidebar");
  const show = open === undefined ? !nav.classList.contains("open") : open;
  nav.classList.toggle("open", show);
  $("menu-button").setAttribute("aria-expanded", String(show));
}

function toggleMembers(open) {
  const panel = $("members");
  panel.hidden = open === undefined ? !panel.hidden : !open;
  $("members-button").setAttribute("aria-expanded", String(!panel.hidden));
  renderMembers();
}

// MARK: Wiring

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  state.signedOut = false;
  state.credentials = {
    name: $("login-name").value.trim(),
    serverPassword: $("login-server-password").value,
    accountPassword: $("login-password").value,
    register: $("login-register").checked,
  };
  // Logs in now, or on the greeting of the connection being opened.
  if (state.socket && state.socket.readyState === WebSocket.OPEN) login(state.credentials);
  else if (!state.socket) connect();
});

$("compose").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("compose-input");
  const text = input.value;
  if (!text.trim()) return;
  input.value = "";
  sendText(text);
});

$("compose-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("compose").requestSubmit();
  }
});

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("join-input").value.trim();
  if (room) join(room, true);
  $("join-input").value = "";
});

$("dm-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("dm-input").value.trim();
  if (name) openDirect(name);
  $("dm-input").value = "";
});

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  search($("search-input").value);
});

$("search-close").onclick = () => { $("search-panel").hidden = true; };
$("room-list-button").onclick = showRoomList;
$("menu-button").onclick = () => toggleSidebar();
$("members-button").onclick = () => toggleMembers();
$("messages").addEventListener("scroll", onScroll, { passive: true });

$("notify-button").onclick = () => {
  if (!("Notification" in window)) { notice("This browser has no notifications."); return; }
  Notification.requestPermission().then((permission) => {
    $("notify-button").textContent = permission === "granted" ? "Notifications on" : "Notifications blocked";
  });
};

$("logout-button").onclick = () => {
  state.signedOut = true;
  state.credentials = null;
  send({ type: "quit", reason: "signed out" });
  state.conversations.clear();
  state.active = null;
  state.me = null;
  $("messages").replaceChildren();
  showLogin();
};

document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
    event.preventDefault();
    $("search-input").focus();
  } else if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    const keys = [...state.conversations.values()].filter((c) => c.isRoom || c.listed).map((c) => c.key);
    const index = keys.indexOf(state.active);
    const next = keys[(index + (event.key === "ArrowUp" ? -1 : 1) + keys.length) % keys.length];
    if (next) activate_(next);
  } else if (event.key === "Escape") {
    $("search-panel").hidden = true;
    toggleSidebar(false);
  }
});

document.addEventListener("visibilitychange", () => {
  const c = state.conversations.get(state.active);
  if (!document.hidden && c && c.atBottom) markRead(c);
});

// For the browser tests and the curious: the page's state, read-only by convention.
window.chatState = state;

$("login-name").value = store.getItem("chat.name") || "";
if ($("login-name").value) $("login-password").focus();
connect();
