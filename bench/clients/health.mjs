// 1-client Health from the TypeScript client (Node) for SECS seconds: prints {"rate": calls/s}.
// usage: node health.mjs DIST URL SECS (key in SANDPROC_TOKEN; DIST = client/ts/dist/index.js)
const [dist, url, secs] = process.argv.slice(2);
const { connect } = await import(dist);
const c = connect({ url, token: process.env.SANDPROC_TOKEN });
for (let i = 0; i < 200; i++) await c.system.health({}); // warm up
let n = 0;
const start = performance.now();
let spent;
for (;;) {
  for (let i = 0; i < 100; i++) await c.system.health({});
  n += 100;
  spent = (performance.now() - start) / 1000;
  if (spent >= Number(secs)) break;
}
console.log(JSON.stringify({ rate: n / spent, calls: n }));
c.close();
