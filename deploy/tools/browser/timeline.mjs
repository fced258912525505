// Loads an order's timeline page in headless Chromium, as an operator's
// browser would (with the operator's token in the Authorization header),
// and prints what a person sees: the heading, the status, every row of the
// timeline and of the payments table, in page order, as JSON.
//
// Usage: node timeline.mjs <page URL> <bearer token> [screenshot.png]
import { chromium } from "playwright-core";

const [url, token, screenshot] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node timeline.mjs <page URL> <bearer token> [screenshot.png]");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless=new"],
});
try {
  const context = await browser.newContext({
    extraHTTPHeaders: { Authorization: `Bearer ${token}` },
    javaScriptEnabled: false,
  });
  const page = await context.newPage();
  const response = await page.goto(url, { waitUntil: "load" });
  const cells = (row) => row.locator("td").allInnerTexts();
  const rows = async (selector) => {
    const found = [];
    for (const row of await page.locator(selector).all()) {
      found.push({
        visible: await row.isVisible(),
        cells: await cells(row),
      });
    }
    return found;
  };
  const seen = {
    status: response.status(),
    title: await page.title(),
    heading: await page.locator("h1").innerText(),
    order_status: await page.locator("#status").innerText(),
    payment_status: await page.locator("#payment-status").innerText(),
    missing: await page.locator(".missing").allInnerTexts(),
    steps: await rows("#timeline tbody tr"),
    payments: await rows("#payments tbody tr"),
  };
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}
