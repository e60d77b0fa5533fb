/**
 * Headless Chromium (Debian's `chromium`, installed by scripts/ensure-system-deps.sh) driven by
 * playwright-core, for tests where a person's browser is part of the flow (OIDC login pages).
 * Every request to anything but loopback is aborted: pages under test (e.g. oidc-provider's
 * dev login page, which @imports a web font) must never reach the Internet from a test.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
  } catch {
    return false;
  }
}

/** A fresh browser context (own cookies) whose pages can reach loopback only. */
export async function loopbackPage(browser: Browser): Promise<{ context: BrowserContext; page: Page; blocked: string[] }> {
  const context = await browser.newContext();
  const blocked: string[] = [];
  await context.route("**/*", async (route) => {
    const url = route.request().url();
    if (isLoopback(url) || url.startsWith("data:")) {
      await route.continue();
    } else {
      blocked.push(url);
      await route.abort();
    }
  });
  const page = await context.newPage();
  return { context, page, blocked };
}

/** Complete oidc-provider's dev interaction pages (login form, then consent) as `login`. */
export async function completeDevLogin(page: Page, login: string): Promise<void> {
  await page.waitForSelector('input[name="login"]', { timeout: 15_000 });
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', "any-password");
  await Promise.all([page.waitForLoadState("load"), page.click('button[type="submit"]')]);
  // Consent ("Continue"), shown once per client and account.
  const consent = page.locator('input[name="prompt"][value="consent"]');
  if ((await consent.count()) > 0) {
    await Promise.all([page.waitForLoadState("load"), page.click('button[type="submit"]')]);
  }
}
