// Gatehouse connect SDK: opens the hosted connect page for a connect token
// and tells the platform's page when the end user is done.
//
//   import { openConnect } from "https://gatehouse.example.com/sdk/connect.js";
//   const result = await openConnect({ url, onComplete, onClose, mode: "popup" });
//   // result.status: "complete" (every requirement met) or "closed"
//
// `url` is the `url` of `POST /v1/connect/tokens`, minted with this page's
// origin in `allowed_origins`: the hosted page posts
// `{type: "gatehouse:connect", status, user_id}` only to those origins.
// Messages are taken only from the hosted page's own origin and window.
//
// mode "popup" (default) opens a popup window; "modal" shows the page in an
// iframe over this page (framing is allowed for the token's
// allowed_origins only). Served by Gatehouse at /sdk/connect.js and
// packaged for npm as sdk/js; no dependencies.

const MESSAGE = 'gatehouse:connect';
const POPUP_FEATURES = 'popup=yes,width=520,height=760';
const CLOSED_POLL_MS = 400;

/**
 * Opens the hosted connect page at `url`.
 * @param {{url: string, onComplete?: (r: {status: "complete", user_id: string}) => void,
 *          onClose?: (r: {status: "closed", user_id?: string}) => void,
 *          mode?: "popup" | "modal"}} options
 * @returns {Promise<{status: "complete" | "closed", user_id?: string}>}
 */
export function openConnect(options) {
  const { url, onComplete, onClose, mode = 'popup' } = options || {};
  let pageOrigin;
  try {
    pageOrigin = new URL(url).origin;
  } catch {
    return Promise.reject(new TypeError('openConnect: url must be the absolute URL of a hosted connect page'));
  }
  if (mode !== 'popup' && mode !== 'modal') {
    return Promise.reject(new TypeError('openConnect: mode must be "popup" or "modal"'));
  }
  return new Promise((resolve, reject) => {
    let target = null;
    let overlay = null;
    let timer = 0;
    let finished = false;

    function finish(result) {
      if (finished) return;
      finished = true;
      window.removeEventListener('message', onMessage);
      window.clearInterval(timer);
      if (overlay) overlay.remove();
      if (result.status === 'complete') {
        if (target && !target.closed && mode === 'popup') target.close();
        if (onComplete) onComplete(result);
      } else if (onClose) {
        onClose(result);
      }
      resolve(result);
    }

    function onMessage(event) {
      if (event.origin !== pageOrigin || event.source !== target) return;
      const data = event.data;
      if (!data || data.type !== MESSAGE) return;
      if (data.status === 'complete' || data.status === 'closed') {
        finish({ status: data.status, user_id: data.user_id });
      }
    }

    window.addEventListener('message', onMessage);
    if (mode === 'popup') {
      target = window.open(url, 'gatehouse-connect', POPUP_FEATURES);
      if (!target) {
        window.removeEventListener('message', onMessage);
        reject(new Error('openConnect: the popup was blocked; call openConnect from a click handler'));
        return;
      }
      timer = window.setInterval(() => {
        if (target.closed) finish({ status: 'closed' });
      }, CLOSED_POLL_MS);
    } else {
      overlay = document.createElement('div');
      overlay.setAttribute('role', 'dialog');
      overlay.setAttribute('aria-modal', 'true');
      overlay.setAttribute('aria-label', 'Connect your accounts');
      overlay.style.cssText =
        'position:fixed;inset:0;z-index:2147483647;background:rgba(15,23,42,.55);display:flex;align-items:center;justify-content:center';
      const frame = document.createElement('iframe');
      frame.src = url;
      frame.title = 'Connect your accounts';
      frame.style.cssText = 'width:min(520px,100vw);height:min(760px,100vh);border:0;border-radius:12px;background:#fff';
      const close = document.createElement('button');
      close.type = 'button';
      close.textContent = 'Close';
      close.style.cssText = 'position:absolute;top:12px;right:12px;padding:6px 12px';
      close.addEventListener('click', () => finish({ status: 'closed' }));
      overlay.append(frame, close);
      document.body.append(overlay);
      target = frame.contentWindow;
    }
  });
}
