// The Node socket.io server `bench --flavour node` measures (scripts/bench.sh --node): a socket
// emits `join` {room} to join a room (acked), and `POST /emit?room=R` with a JSON body emits
// `message` with that value to the room. PORT (default 3000; 0 picks a free one) on 127.0.0.1;
// prints `listening on http://ADDR` once bound.
import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (req.method !== "POST" || url.pathname !== "/emit") return res.writeHead(404).end();
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let data;
    try { data = JSON.parse(Buffer.concat(chunks).toString()); } catch { return res.writeHead(400).end("bad JSON\n"); }
    io.to(url.searchParams.get("room") ?? "").emit("message", data);
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  });
});
const io = new Server(http);
io.on("connection", (socket) => socket.on("join", (m, ack) => {
  socket.join(String(m?.room));
  if (typeof ack === "function") ack({ ok: true });
}));
http.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${http.address().port}`);
});
