// web_test.mjs - `sdc serve`'s web page in a real browser: Debian's chromium,
// headless, driven by playwright-core. Starts the server with the tiny model on
// a free loopback port, loads the page, types a prompt, clicks Generate, waits
// for the images, checks their captions and download links, paints a mask over
// a start image in the img2img tab and checks the inpaint kept the unpainted
// pixels (A1111's overlay) and changed painted ones, that the page asked
// nothing of any other host and fits a phone-width screen, saves a screenshot to
// build/screenshot-web.png (SDC_SCREENSHOT overrides; docs/ keeps a copy for README), and stops the server (which must exit 0).
// Prints one "browser test: PASS|FAIL ..." line; exits non-zero on failure.
//   SDC_BIN (default build/sdc), CHROMIUM (default /usr/bin/chromium)
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const sdcBin = path.resolve(root, process.env.SDC_BIN || "build/sdc");
const chromiumBin = process.env.CHROMIUM || "/usr/bin/chromium";
// no -m: the server runs the demo model the program finds beside itself
const screenshotPath = process.env.SDC_SCREENSHOT || path.join(root, "build/screenshot-web.png");
const TIMEOUT_MS = 360000;
const initPng = path.join(root, "tests/fixtures2/cases/inpaint-sd4-euler_init.png"); // 64x64, the demo model's size

function startServer() {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.SDC_MODEL;
    const proc = spawn(sdcBin, ["serve", "--port", "0", "--threads", "2", "--quiet"],
                       { stdio: ["ignore", "pipe", "pipe"], env });
    let out = "", err = "";
    proc.stderr.on("data", (d) => { err += d; });
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) resolve({ proc, url: m[1], stderr: () => err });
    });
    proc.on("error", reject);
    proc.on("exit", (code) => reject(new Error(`sdc serve exited ${code} before listening: ${err.trim()}`)));
  });
}

function stopServer(server) {
  return new Promise((resolve) => {
    if (server.proc.exitCode !== null) return resolve(server.proc.exitCode);
    server.proc.removeAllListeners("exit");
    server.proc.on("exit", (code, signal) => resolve(signal ? signal : code));
    server.proc.kill("SIGTERM");
  });
}

async function run() {
  if (!existsSync(sdcBin)) throw new Error(`${sdcBin} not found (build it first)`);
  if (!existsSync(chromiumBin)) throw new Error(`${chromiumBin} not found (apt-get install chromium)`);
  const server = await startServer();
  const profile = mkdtempSync(path.join(tmpdir(), "sdc-chromium-"));
  let context = null;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumBin,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1100, height: 720 },
      colorScheme: "light",
    });
    const page = context.pages()[0] || await context.newPage();
    const foreign = [];
    page.on("request", (req) => {
      const u = req.url();
      if (!u.startsWith(server.url) && !u.startsWith("data:")) foreign.push(u);
    });
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));

    await page.goto(server.url);
    await page.waitForFunction(() => document.querySelectorAll("#sampler option").length > 1);
    const model = await page.textContent("#model");
    if (!model.includes("sdc-shapes-64")) throw new Error(`model name not shown: '${model}'`);
    /* the demo model's defaults: a caption of its own, its 64x64 size */
    const first = await page.$eval("#prompt", (t) => t.value);
    if (first !== "a red circle on a blue background") throw new Error(`default prompt '${first}'`);
    const size = await page.$eval("#width", (w) => w.value + "x" + document.getElementById("height").value);
    if (size !== "64x64") throw new Error(`default size ${size}, want the model's 64x64`);
    /* a fresh browser (nothing saved) starts on the registry's ui_default sampler */
    const firstSampler = await page.$eval("#sampler", (s) => s.value);
    if (firstSampler !== "Euler a") throw new Error(`the sampler preselected is '${firstSampler}', want 'Euler a'`);

    const example = "a large yellow star on a black background";
    await page.click(`#examples button:has-text("${example}")`);
    const picked = await page.$eval("#prompt", (t) => t.value);
    if (picked !== example) throw new Error(`the example button set the prompt to '${picked}'`);
    await page.fill("#negative", "blurry");
    await page.fill("#steps", "20");
    await page.fill("#cfg", "7");
    await page.selectOption("#sampler", "Euler a");
    await page.fill("#seed", "42");
    await page.fill("#batch", "2");
    await page.click("#generate");
    await page.waitForSelector("#results figure:nth-child(2) img", { timeout: 180000 });
    await page.waitForFunction(() => [...document.querySelectorAll("#results img")].every((i) => i.complete && i.naturalWidth > 0));
    const err = (await page.textContent("#error")).trim();
    if (err) throw new Error(`the page shows an error: ${err}`);

    const figs = await page.$$eval("#results figure", (fs) => fs.map((f) => ({
      w: f.querySelector("img").naturalWidth,
      h: f.querySelector("img").naturalHeight,
      caption: f.querySelector("pre").textContent,
      href: f.querySelector("a").getAttribute("href"),
      download: f.querySelector("a").getAttribute("download"),
    })));
    if (figs.length !== 2) throw new Error(`${figs.length} images shown, want 2`);
    for (const [i, f] of figs.entries()) {
      const seed = 42 + i;
      if (f.w !== 64 || f.h !== 64) throw new Error(`image ${i} is ${f.w}x${f.h}, want 64x64`);
      if (!f.caption.startsWith(example) || !f.caption.includes(`Seed: ${seed},`) ||
          !f.caption.includes("Sampler: Euler a") || !f.caption.includes("Negative prompt: blurry"))
        throw new Error(`image ${i} caption: ${f.caption}`);
      if (!f.href.startsWith("data:image/png;base64,") || f.download !== `sdc-${seed}.png`)
        throw new Error(`image ${i} download link: ${f.download} ${f.href.slice(0, 40)}`);
    }
    const status = await page.textContent("#status");
    if (!/2 images in/.test(status)) throw new Error(`status line: '${status}'`);
    await page.waitForTimeout(500); // the progress bar's width transition
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: screenshotPath, fullPage: true });
    if (process.env.SDC_PHONE_SHOT) {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: process.env.SDC_PHONE_SHOT, fullPage: true });
    }

    // the img2img / inpaint tab: a start image, a painted mask, the answer keeps the unpainted pixels
    await page.click("#tab-img2img");
    await page.setInputFiles("#init-file", initPng);
    await page.waitForSelector("#paint canvas");
    await page.fill("#brush", "16");
    const box = await page.$eval("#paint canvas", (c) => { const r = c.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
    await page.mouse.move(box.x + box.w * 0.3, box.y + box.h * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.w * 0.7, box.y + box.h * 0.5, { steps: 8 });
    await page.mouse.up();
    await page.fill("#strength", "0.75");
    await page.fill("#batch", "1");
    await page.click("#generate");
    await page.waitForFunction(() => {
      const f = document.querySelectorAll("#results figure");
      return f.length === 1 && f[0].querySelector("pre").textContent.includes("Denoising strength: 0.75") &&
             f[0].querySelector("img").complete && f[0].querySelector("img").naturalWidth > 0;
    }, null, { timeout: 180000 });
    const err2 = (await page.textContent("#error")).trim();
    if (err2) throw new Error(`inpaint: the page shows an error: ${err2}`);
    const inpaint = await page.evaluate(() => {
      const px = (el) => {
        const c = document.createElement("canvas");
        c.width = el.naturalWidth || el.width; c.height = el.naturalHeight || el.height;
        c.getContext("2d").drawImage(el, 0, 0);
        return c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      };
      const init = px(document.querySelector("#paint img")), mask = px(document.querySelector("#paint canvas"));
      const img = document.querySelector("#results img"), out = px(img);
      let kept = 0, keptSame = 0, painted = 0, changed = 0;
      for (let i = 0; i < out.length; i += 4) {
        const same = out[i] === init[i] && out[i + 1] === init[i + 1] && out[i + 2] === init[i + 2];
        if (mask[i + 3] === 0) { kept++; if (same) keptSame++; }
        else if (mask[i + 3] === 255) { painted++; if (!same) changed++; }
      }
      return { w: img.naturalWidth, h: img.naturalHeight, kept, keptSame, painted, changed };
    });
    if (inpaint.w !== 64 || inpaint.h !== 64) throw new Error(`inpaint image is ${inpaint.w}x${inpaint.h}, want 64x64`);
    if (!inpaint.painted || inpaint.kept !== inpaint.keptSame || inpaint.changed === 0)
      throw new Error(`inpaint: ${inpaint.keptSame} of ${inpaint.kept} unpainted pixels kept, ${inpaint.changed} of ${inpaint.painted} painted ones changed`);
    await page.click("#tab-txt2img");

    // a phone-width screen: nothing wider than the viewport
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) throw new Error(`at 390 px wide the page is ${overflow} px too wide`);

    if (foreign.length) throw new Error(`the page fetched other hosts: ${foreign.slice(0, 3).join(", ")}`);
    if (pageErrors.length) throw new Error(`script errors: ${pageErrors.join("; ")}`);
  } finally {
    if (context) await context.close();
    rmSync(profile, { recursive: true, force: true });
    const code = await stopServer(server);
    if (code !== 0) throw new Error(`sdc serve exited ${code} after SIGTERM: ${server.stderr().trim()}`);
  }
}

const timer = setTimeout(() => {
  console.log(`browser test: FAIL timed out after ${TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, TIMEOUT_MS);
const t0 = Date.now();
run().then(() => {
  clearTimeout(timer);
  console.log(`browser test: PASS page loaded, 2 images generated and shown, an inpaint painted and kept outside its mask, screenshot ${path.relative(root, screenshotPath)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}, (e) => {
  clearTimeout(timer);
  console.log(`browser test: FAIL ${e.message}`);
  process.exitCode = 1;
});
