import { Sandbox, createNetwork, removeNetwork } from './src/index.js';
const image = '/tmp/nsbox-bench-rootfs/889d3a4ff4a2b730';
const name = `rl${process.pid}`;
await createNetwork(name);
try {
  const db = await Sandbox.create({ image, userns: true, network: name, hostname: 'db', cgroup: false });
  console.log('db', db.address);
  await db.writeFile('/tmp/index.html', 'from db\n');
  await db.exec(['httpd', '-p', '8080', '-h', '/tmp']);
  const app = await Sandbox.create({ image, userns: true, network: name, hostname: 'app', cgroup: false });
  console.log('app', app.address);
  const r = await app.exec(['sh', '-c', `cat /etc/hosts; ip addr show eth0 | grep inet; (printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 3 db 8080 | tail -n 1`], { reject: false });
  console.log(r.stdout, r.stderr);
  await app.remove(); await db.remove();
} catch (e) { console.error('ERR', e); }
await removeNetwork(name);
