// The app in a real browser against a real `beatstream dev` (anvil, relay, indexer, keeper, API and studio):
// Debian's Chromium driven by playwright-core, no browser download and no network beyond this machine.
//
// An artist registers a name and uploads a track through the page; a listener deposits, plays ten seconds and hears
// them (the page's AnalyserNode shows sound, not silence, and the audio clock advances); the artist's page shows the
// earnings arrive without a reload; the listener's vault balance drops by exactly what the play paid. The listener
// tips the artist with markup in the message; once the keeper settles it and the indexer mirrors it, the artist's
// page shows the message as text (no element made from it), the listener among its supporters, and any artist's
// public page (`#/artists/<label>`) its tips and splits.
//
// BEATSTREAM_BIN: the `beatstream` binary (default target/debug/beatstream). CHROMIUM: the browser
// (default /usr/bin/chromium). BEATSTREAM_SCREENSHOTS: where to write the three screenshots (default
// target/web-screenshots; `make screenshots` writes docs/screenshots).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.BEATSTREAM_BIN ?? path.join(root, 'target/debug/beatstream');
const shots = path.resolve(root, process.env.BEATSTREAM_SCREENSHOTS ?? 'target/web-screenshots');
/** The README tour's query. */
const TOUR_QUERY =
  '{ artist(name: "demo") { name earnings { earned { usdc } pending { usdc } } stats { streams seconds uniqueListeners } tracks { edges { node { id title } } } } stats { liveSessions settled { usdc } } }';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** A 16-bit mono WAV: a 440 Hz tone with a slow 2 Hz pulse, `seconds` long. */
function wav(seconds, rate = 44100) {
  const n = seconds * rate;
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const v = 0.4 * Math.sin(2 * Math.PI * 440 * t) * (0.75 + 0.25 * Math.sin(2 * Math.PI * 2 * t));
    buf.writeInt16LE(Math.round(v * 32767), 44 + i * 2);
  }
  return buf;
}

let dev;
let browser;
let api;
const devOutput = [];

before(async () => {
  const [apiPort, relayPort] = [await freePort(), await freePort()];
  api = `http://127.0.0.1:${apiPort}`;
  dev = spawn(bin, ['dev', '--listeners', '0', '--api-listen', `127.0.0.1:${apiPort}`, '--relay-listen', `127.0.0.1:${relayPort}`], {
    cwd: root,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  dev.stderr.on('data', (d) => devOutput.push(d.toString()));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`beatstream dev not ready in 240 s:\n${devOutput.join('')}`)), 240_000);
    dev.stdout.on('data', (d) => {
      const text = d.toString();
      devOutput.push(text);
      if (devOutput.join('').includes('BeatStream dev node is ready') && devOutput.join('').includes('Paste into GraphiQL')) {
        clearTimeout(timer);
        resolve();
      }
    });
    dev.on('exit', (code) => reject(new Error(`beatstream dev exited (${code}):\n${devOutput.join('')}`)));
  });
  assert.match(devOutput.join(''), new RegExp(`App: +${api.replace(/\./g, '\\.')}/`), 'the banner prints the app URL');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--disable-dev-shm-usage'],
  });
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  if (dev && dev.exitCode === null) {
    dev.kill('SIGINT');
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        dev.kill('SIGKILL');
        resolve();
      }, 30_000);
      dev.on('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
});

/** A fresh browser profile on the app with its own demo account, failing on any page error. */
async function openApp(hash) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  // Only this machine: anything else the page asks for is refused and reported.
  const foreign = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (['127.0.0.1', 'localhost'].includes(url.hostname) || url.protocol === 'data:') return route.continue();
    foreign.push(url.href);
    return route.abort();
  });
  await page.goto(`${api}/${hash}`);
  await page.getByTestId('use-demo-account').click();
  await page.getByTestId('wallet-address').waitFor({ timeout: 60_000 });
  return { page, errors, foreign };
}

/**
 * The app with an injected EIP-1193 wallet. With `chainId`, a wallet on that chain that refuses every switch of
 * network and every signature (code 4001, as a wallet's owner clicking "Reject"); with `account`, one that sends
 * every request to the dev node's anvil, which signs for its unlocked default accounts.
 */
async function injected({ chainId, account }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(({ chainId, account }) => {
    const rejected = () => Object.assign(new Error('User rejected the request.'), { code: 4001 });
    let rpc = null;
    const forward = async (method, params) => {
      rpc ??= (await (await fetch('/app/config.json')).json()).rpcUrl;
      const res = await fetch(rpc, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: params ?? [] }),
      });
      const body = await res.json();
      if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code });
      return body.result;
    };
    window.ethereum = {
      async request({ method, params }) {
        if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [account ?? '0x000000000000000000000000000000000000dEaD'];
        if (account) return forward(method, params);
        if (method === 'eth_chainId') return chainId;
        throw rejected();
      },
      on() {},
      removeListener() {},
    };
  }, { chainId: chainId ?? null, account: account ?? null });
  const page = await context.newPage();
  await page.goto(`${api}/#/`);
  return page;
}

const raw = async (page, testId) => BigInt((await page.getByTestId(testId).getAttribute('data-raw')) || '0');

async function until(what, check, timeoutMs = 60_000, everyMs = 500) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

test('an artist uploads, a listener pays to hear ten seconds, the artist sees the earnings live', { timeout: 600_000 }, async (t) => {
  const artist = await openApp('#/artist');
  const a = artist.page;
  const label = `webtest${Date.now() % 100000}`;

  await t.test('the artist registers a name with records and a rate', async () => {
    await a.getByTestId('register-label').fill(label);
    await a.getByTestId('register-rate').fill('0.001');
    await a.getByTestId('register-description').fill('Made in the browser test');
    await a.getByTestId('register-genre').fill('test tones');
    await a.getByTestId('register').click();
    await a.getByTestId('artist-name').waitFor({ timeout: 90_000 });
    assert.match(await a.getByTestId('artist-name').innerText(), new RegExp(`${label}\\.beatstream\\.eth`));
  });

  let trackId;
  await t.test('the artist signs in to the studio and uploads and publishes a track', async () => {
    await a.getByTestId('sign-in').click();
    await a.getByTestId('upload-title').fill('Browser Tone');
    await a.getByTestId('upload-file').setInputFiles({ name: 'tone.wav', mimeType: 'audio/wav', buffer: wav(30) });
    await a.getByTestId('upload').click();
    const done = await a.getByTestId('upload-done').innerText({ timeout: 120_000 });
    trackId = done.match(/as track (\d+)/)?.[1];
    assert.ok(trackId, done);
    assert.match(done, /\(30 s,/);
  });

  const listener = await openApp('#/');
  const l = listener.page;
  let before;
  await t.test('the listener deposits', async () => {
    await l.getByTestId('deposit-amount').fill('5');
    await l.getByTestId('deposit').click();
    before = await until('the deposit in the vault', async () => {
      const v = await raw(l, 'vault-available');
      return v === 5_000_000n ? v : null;
    });
  });

  const earningsBefore = {
    updates: Number(await a.getByTestId('earnings').getAttribute('data-updates')),
    pending: await raw(a, 'earnings-pending'),
    earned: await raw(a, 'earnings-earned'),
  };
  assert.equal(earningsBefore.pending + earningsBefore.earned, 0n, 'a new artist has earned nothing');

  let paid;
  await t.test('the listener plays ten seconds and hears them', async () => {
    const play = l.getByTestId(`play-${trackId}`);
    await until('the track in the listener\'s list', async () => (await play.count()) > 0, 30_000);
    await play.click();
    await until('the player playing', async () => (await l.getByTestId('player-status').innerText()) === 'playing', 60_000);
    // The first second sounds once its key has come and its chunk is fetched, checked and decrypted.
    await until('the first sound', async () => l.evaluate(() => window.beatstream.audio.rms() > 0.05), 15_000, 50);
    // Ten seconds of listening, sampled every 250 ms: the output's level and the player's position.
    const samples = [];
    const start = await l.evaluate(() => ({ clock: window.beatstream.audio.context.currentTime, position: window.beatstream.audio.position() }));
    const started = Date.now();
    while (Date.now() - started < 10_000) {
      samples.push(await l.evaluate(() => window.beatstream.audio.rms()));
      await new Promise((r) => setTimeout(r, 250));
    }
    const end = await l.evaluate(() => ({ clock: window.beatstream.audio.context.currentTime, position: window.beatstream.audio.position() }));
    assert.ok(end.clock - start.clock >= 9, `the audio clock advanced ${end.clock - start.clock} s in 10 s`);
    assert.ok(end.position - start.position >= 9, `the track advanced ${end.position - start.position} s in 10 s`);
    const loud = samples.filter((r) => r > 0.05).length;
    console.log(`# heard: clock +${(end.clock - start.clock).toFixed(2)} s, track +${(end.position - start.position).toFixed(2)} s, sound in ${loud}/${samples.length} samples`);
    assert.ok(loud >= samples.length * 0.9, `sound in ${loud} of ${samples.length} samples (levels ${samples.map((r) => r.toFixed(3)).join(' ')})`);
    await l.screenshot({ path: path.join(shots, 'listener.png'), fullPage: true });
    await l.getByTestId('stop').click();
    await until('the player stopped', async () => (await l.getByTestId('player-status').innerText()) === 'stopped', 30_000);
    paid = await raw(l, 'player-paid');
    // 0.001 USDC a second: the ten seconds heard, and the seconds billed while the first chunk came and the stop went.
    assert.ok(paid >= 10_000n && paid <= 16_000n, `paid ${paid} for about ten seconds`);
  });

  await t.test("the artist's page shows the earnings arrive without a reload", async () => {
    const url = a.url();
    await until('earnings on the artist\'s page', async () => (await raw(a, 'earnings-pending')) + (await raw(a, 'earnings-earned')) > 0n, 60_000);
    await until('the settlement on the artist\'s page', async () => (await raw(a, 'earnings-earned')) > 0n, 90_000);
    assert.equal(a.url(), url);
    const updates = Number(await a.getByTestId('earnings').getAttribute('data-updates'));
    assert.ok(updates > earningsBefore.updates, `the subscription delivered ${updates - earningsBefore.updates} updates`);
    assert.equal(await a.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'the page was loaded once');
    await a.screenshot({ path: path.join(shots, 'artist.png'), fullPage: true });
  });

  await t.test("the listener's balance drops by what was paid", async () => {
    // The keeper may settle the play in parts (a threshold reached mid-play, then the rest): wait for them all.
    const after = await until('the settlement of the whole play', async () => {
      const v = await raw(l, 'vault-available');
      return before - v >= paid ? v : null;
    }, 90_000);
    assert.equal(before - after, paid, `the vault took ${before - after}, the play paid ${paid}`);
    await l.screenshot({ path: path.join(shots, 'listener.png'), fullPage: true });
  });

  await t.test('the artist withdraws the earnings', async () => {
    const withdrawable = await raw(a, 'earnings-withdrawable');
    assert.ok(withdrawable > 0n);
    await a.getByTestId('withdraw-earnings').click();
    await until('the withdrawal on the artist\'s page', async () => (await raw(a, 'earnings-withdrawable')) === 0n, 60_000);
  });

  await t.test("the listener tips the artist; the artist's page shows the message as text, never as markup", async () => {
    const message = '<b>gm</b> & "thanks" from the browser <i>test</i> ♥';
    const available = await raw(l, 'vault-available');
    const tip = `tip-artist-${label}`;
    await l.getByTestId(tip).click();
    await l.getByTestId(`${tip}-amount`).fill('0.05');
    // The counter counts bytes of UTF-8, as the relay and the vault do: 140 × é is 280 bytes and may be sent...
    await l.getByTestId(`${tip}-message`).fill('é'.repeat(140));
    assert.equal(await l.getByTestId(`${tip}-bytes`).getAttribute('data-bytes'), '280');
    assert.equal(await l.getByTestId(`${tip}-send`).isDisabled(), false);
    // ...one byte more may not.
    await l.getByTestId(`${tip}-message`).fill(`${'é'.repeat(140)}!`);
    assert.match(await l.getByTestId(`${tip}-bytes`).innerText(), /^281\/280 bytes: too long/);
    assert.equal(await l.getByTestId(`${tip}-send`).isDisabled(), true);
    await l.getByTestId(`${tip}-message`).fill(message);
    assert.equal(await l.getByTestId(`${tip}-bytes`).getAttribute('data-bytes'), String(Buffer.byteLength(message)));
    await l.getByTestId(`${tip}-send`).click();
    assert.match(await l.getByTestId(`${tip}-done`).innerText({ timeout: 60_000 }), /^Sent 0\.050000 USDC to /);

    // Settled by the keeper's next batch, mirrored by the indexer, polled by the artist's page.
    const row = a.getByTestId('tips').locator('tr', { hasText: 'from the browser' });
    await row.waitFor({ timeout: 120_000 });
    const shown = await row.getByTestId('tip-message').textContent();
    assert.equal(shown, message, 'the message exactly as written');
    assert.ok(shown.includes('<b>'));
    assert.equal(await a.getByTestId('tips').locator('b, i').count(), 0, 'no element was made from the message');
    assert.equal(await row.locator('[data-raw]').getAttribute('data-raw'), '50000');
    // The listener is a supporter: what it streamed and tipped.
    const supporter = a.getByTestId('supporters').locator(`tr[data-listener="${(await l.getByTestId('wallet-address').getAttribute('data-address')).toLowerCase()}"]`);
    await until('the listener among the supporters', async () => (await supporter.count()) > 0 && BigInt((await supporter.locator('td[data-raw]').getAttribute('data-raw')) ?? '0') >= paid + 50_000n, 60_000);
    assert.match(await supporter.innerText(), /0\.050000\s*\(1 tip\)/);
    // The listener's vault paid the tip.
    await until('the tip taken from the vault', async () => (await raw(l, 'vault-available')) === available - 50_000n, 60_000);
    await a.screenshot({ path: path.join(shots, 'artist.png'), fullPage: true });

    // Any artist's public page: the same tip, shown the same way, without a wallet.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await context.newPage();
    await p.goto(`${api}/#/artists/${label}`);
    const pub = p.getByTestId('tips').locator('tr', { hasText: 'from the browser' });
    await pub.waitFor({ timeout: 30_000 });
    assert.equal(await pub.getByTestId('tip-message').textContent(), message);
    assert.equal(await p.getByTestId('tips').locator('b, i').count(), 0);

    // The demo artist: `beatstream dev`'s listener tipped it with markup, and "Gas Lights" has a 70/20/10 split.
    await p.goto(`${api}/#/artists/demo`);
    const demoTip = p.getByTestId('tips').locator('tr', { hasText: 'from the dev node' });
    await demoTip.waitFor({ timeout: 60_000 });
    assert.equal(await demoTip.getByTestId('tip-message').textContent(), '<b>gm</b> from the dev node, shown escaped, never rendered');
    assert.equal(await p.getByTestId('tips').locator('b').count(), 0, 'no element was made from the demo message');
    const split = p.getByTestId('splits').locator('article[data-in-force="true"]', { hasText: 'Gas Lights' });
    await split.waitFor({ timeout: 30_000 });
    assert.deepEqual(await split.locator('td[data-share]').evaluateAll((tds) => tds.map((td) => td.dataset.share)), ['7000', '2000', '1000']);
    assert.match(await split.innerText(), /version 1/);
    await p.screenshot({ path: path.join(shots, 'artist-public.png'), fullPage: true });
    await context.close();
  });

  await t.test('the listener requests a withdrawal and revokes this device', async () => {
    const available = await raw(l, 'vault-available');
    await l.getByTestId('request-withdrawal-amount').fill('1');
    await l.getByTestId('request-withdrawal').click();
    await until('1 USDC thawing', async () => (await l.getByTestId('vault-thawing').innerText()).startsWith('1.000000 USDC'), 30_000);
    assert.equal(await raw(l, 'vault-available'), available - 1_000_000n);
    const device = l.getByTestId('devices').locator('tr', { hasText: 'this device' });
    await device.getByRole('button', { name: /Revoke/ }).click();
    await until('the revocation in the devices list', async () => /revoked/.test(await l.getByTestId('devices').innerText()), 60_000);
  });

  await t.test("GraphiQL from the node's bundle answers the tour's query", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const g = await context.newPage();
    const foreign = [];
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (['127.0.0.1', 'localhost'].includes(url.hostname) || url.protocol === 'data:') return route.continue();
      foreign.push(url.href);
      return route.abort();
    });
    await g.goto(`${api}/graphql?query=${encodeURIComponent(TOUR_QUERY)}`);
    // Run once the editor holds the query (GraphiQL loads the schema first); again if the first run found it empty.
    await g.locator('.graphiql-query-editor').getByText('uniqueListeners').waitFor({ timeout: 30_000 });
    const answer = g.locator('.result-window').getByText('"demo.beatstream.eth"');
    await until('GraphiQL\'s answer', async () => {
      await g.locator('.graphiql-execute-button').click();
      return answer.waitFor({ timeout: 5_000 }).then(() => true, () => false);
    }, 60_000, 0);
    await g.screenshot({ path: path.join(shots, 'graphiql.png') });
    // A subscription over /graphql/ws from the same bundle: artistEarnings answers with the earnings now.
    await g.goto(`${api}/graphql?query=${encodeURIComponent(`subscription { artistEarnings(artist: "${label}") { earned { usdc } settlements } }`)}`);
    await g.locator('.graphiql-query-editor').getByText('artistEarnings').waitFor({ timeout: 30_000 });
    const earned = g.locator('.result-window').getByText(/"settlements": [1-9]/);
    await until('the subscription\'s first answer', async () => {
      await g.locator('.graphiql-execute-button').click();
      return earned.waitFor({ timeout: 5_000 }).then(() => true, () => false);
    }, 60_000, 0);
    assert.deepEqual(foreign, [], 'GraphiQL asked for nothing beyond this machine');
  });

  const broke = await openApp('#/');
  await t.test('a listener with no funds is told to deposit', async () => {
    await broke.page.getByTestId('play-1').click();
    const message = await broke.page.getByTestId('player-message').innerText({ timeout: 60_000 });
    assert.equal(message, 'Your vault balance has run out: deposit more USDC to keep listening.');
    assert.equal(await broke.page.getByTestId('player-status').innerText(), 'paused');
  });

  await t.test('an unreachable relay is said in words', async () => {
    const { page, foreign } = broke;
    // Every connection to the relay is refused at once, as a relay that is down would.
    await page.routeWebSocket(/\/ws\/stream/, (ws) => ws.close({ code: 1011, reason: 'relay down' }));
    await page.reload();
    await page.getByTestId('wallet-address').waitFor({ timeout: 60_000 });
    await page.getByTestId('play-1').click();
    const message = await page.getByTestId('player-message').innerText({ timeout: 90_000 });
    assert.match(message, /relay at ws:\/\/127\.0\.0\.1:\d+\/ws\/stream is unreachable/, message);
    assert.deepEqual(foreign, []);
  });

  await t.test('an injected wallet on another network is told to switch', async () => {
    const page = await injected({ chainId: '0x1' });
    await page.getByRole('button', { name: 'Connect wallet' }).click();
    const message = await page.getByTestId('wallet-error').innerText({ timeout: 30_000 });
    assert.match(message, /on chain 1, this node's contracts are on chain 31337/, message);
  });

  await t.test('a signature rejected in the wallet is said in words', async () => {
    const page = await injected({ chainId: '0x7a69' });
    // From the keyboard: the skip link, the three pages, then the wallet's button.
    await page.getByRole('button', { name: 'Connect wallet' }).waitFor();
    for (let i = 0; i < 5; i++) await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Connect wallet');
    await page.keyboard.press('Enter');
    await page.getByTestId('wallet-address').waitFor({ timeout: 30_000 });
    // Playing asks the wallet to sign this device's grant: the wallet refuses.
    await page.getByTestId('play-1').click();
    const message = await page.getByTestId('player-message').innerText({ timeout: 30_000 });
    assert.equal(message, 'You rejected the request in your wallet: nothing was signed or sent.');
  });

  await t.test('an injected wallet deposits with a permit and pays to play', async () => {
    // A wallet extension stand-in: every request goes to anvil, which signs for its unlocked default account 5.
    const account = '0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc';
    const faucet = await fetch(`${api}/dev/faucet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ address: account }) });
    assert.equal(faucet.status, 200);
    const page = await injected({ account });
    await page.getByRole('button', { name: 'Connect wallet' }).click();
    await page.getByTestId('wallet-address').waitFor({ timeout: 30_000 });
    assert.equal(await page.getByTestId('wallet-address').getAttribute('data-address'), account);
    await page.getByTestId('deposit-amount').fill('2');
    await page.getByTestId('deposit').click();
    await until('the deposit', async () => (await raw(page, 'vault-available')) === 2_000_000n, 60_000);
    await page.getByTestId('play-2').click();
    await until('a paid second', async () => (await raw(page, 'player-paid')) > 0n, 60_000);
    await page.getByTestId('stop').click();
    await until('the player stopped', async () => (await page.getByTestId('player-status').innerText()) === 'stopped', 30_000);
  });

  assert.deepEqual([...artist.foreign, ...listener.foreign], [], 'the app asked for nothing beyond this machine');
  assert.deepEqual([...artist.errors, ...listener.errors].map(String), [], 'no uncaught error in the pages');
});
