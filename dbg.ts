import { Sandbox, createNetwork, removeNetwork } from './src/index.js';
import { execFileSync } from 'node:child_process';
const image = '/tmp/nsbox-bench-rootfs/889d3a4ff4a2b730';
const name = `rl${process.pid}`;
await createNetwork(name);
try {
  const db = await Sandbox.create({ image, userns: true, network: name, hostname: 'db', cgroup: false });
  await db.writeFile('/tmp/index.html', 'from db\n');
  await db.exec(['httpd', '-p', '8080', '-h', '/tmp']);
  const app = await Sandbox.create({ image, userns: true, network: name, hostname: 'app', cgroup: false, publish: [{ host: 18777, container: 9090 }] });
  await app.writeFile('/tmp/index.html', 'from app\n');
  await app.exec(['httpd', '-p', '9090', '-h', '/tmp']);
  await new Promise((r) => setTimeout(r, 300));
  console.log('published:', await fetch('http://127.0.0.1:18777/index.html').then((r) => r.text(), (e) => String(e)));
  const r = await app.exec(['sh', '-c', `(printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 3 db 8080 | tail -n 1; nc -w 2 10.231.0.1 18182 </dev/null; echo nc=$?`], { reject: false });
  console.log(r.stdout, r.stderr);
  await app.remove(); await db.remove();
  console.log(execFileSync('sh', ['-c', 'pgrep -af pasta | grep -c user-net || true']).toString());
} catch (e) { console.error('ERR', e); }
await removeNetwork(name);
