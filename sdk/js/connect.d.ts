/** What `openConnect` resolves with. */
export interface ConnectResult {
  /** `complete`: every requirement of the app is met; `closed`: the user closed the page first. */
  status: "complete" | "closed";
  /** The end user the connect token is for (present when the hosted page said it). */
  user_id?: string;
}

export interface OpenConnectOptions {
  /** The `url` returned by `POST /v1/connect/tokens`, minted with this page's origin in `allowed_origins`. */
  url: string;
  /** Called once every requirement is met. */
  onComplete?: (result: ConnectResult & { status: "complete" }) => void;
  /** Called when the user closes the page before that. */
  onClose?: (result: ConnectResult & { status: "closed" }) => void;
  /** `popup` (default) or `modal` (an iframe over the page). */
  mode?: "popup" | "modal";
}

/** Opens Gatehouse's hosted connect page and resolves when the user is done. */
export function openConnect(options: OpenConnectOptions): Promise<ConnectResult>;
