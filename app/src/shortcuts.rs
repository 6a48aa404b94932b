//! Keyboard shortcuts, and the `?` panel that lists them. Keys are ignored while typing in a
//! field (Escape leaves the field).

use leptos::prelude::*;

/// Every shortcut, as the help panel shows it.
const SHORTCUTS: &[(&str, &str)] = &[
    ("/", "Jump to a job id, or search dead letters by error"),
    ("g o", "Go to the overview"),
    ("g j", "Go to jobs"),
    ("g d", "Go to dead letters"),
    ("g t", "Go to triage (dead jobs by error)"),
    ("g q", "Go to queues"),
    ("g a", "Go to the audit log"),
    ("j / k", "Next / previous job in a list (Enter opens it)"),
    ("?", "Show or hide this help"),
    ("Esc", "Close this help, or leave a field"),
];

/// Listens for shortcuts (in the browser) and shows the help panel when asked.
#[component]
pub fn Shortcuts() -> impl IntoView {
    let help = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    listen(help);

    view! {
        <Show when=move || help.get()>
            <div
                role="dialog"
                aria-modal="true"
                aria-labelledby="shortcuts-title"
                class="fixed inset-0 z-20 grid place-items-center bg-slate-900/40 p-4"
                on:click=move |_| help.set(false)
            >
                <div
                    class="w-full max-w-md rounded-xl bg-white p-6 shadow-xl dark:bg-slate-900"
                    on:click=|ev| ev.stop_propagation()
                >
                    <h2 id="shortcuts-title" class="text-lg font-semibold">"Keyboard shortcuts"</h2>
                    <dl class="mt-4 grid grid-cols-[auto_1fr] gap-x-6 gap-y-2 text-sm">
                        {SHORTCUTS.iter().map(|(keys, what)| view! {
                            <dt><kbd class="rounded border border-slate-300 px-1.5 py-0.5 font-mono text-xs dark:border-slate-700">{*keys}</kbd></dt>
                            <dd class="text-slate-600 dark:text-slate-300">{*what}</dd>
                        }).collect_view()}
                    </dl>
                    <button
                        type="button"
                        on:click=move |_| help.set(false)
                        class="mt-6 rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500"
                    >
                        "Close"
                    </button>
                </div>
            </div>
        </Show>
    }
}

#[cfg(feature = "hydrate")]
fn listen(help: RwSignal<bool>) {
    use leptos_router::hooks::use_navigate;
    use wasm_bindgen::JsCast as _;

    let navigate = use_navigate();
    // Set by "g", consumed by the next key.
    let after_g = StoredValue::new(false);
    let handle = window_event_listener(leptos::ev::keydown, move |ev: web_sys::KeyboardEvent| {
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        let key = ev.key();
        let in_field = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if in_field {
            if key == "Escape" {
                blur_active();
            }
            return;
        }
        if after_g.get_value() {
            after_g.set_value(false);
            let target = match key.as_str() {
                "o" => "/",
                "j" => "/jobs",
                "d" => "/dead-letters",
                "t" => "/triage",
                "q" => "/queues",
                "a" => "/audit",
                _ => return,
            };
            ev.prevent_default();
            navigate(target, Default::default());
            return;
        }
        match key.as_str() {
            "?" => help.update(|open| *open = !*open),
            "Escape" => help.set(false),
            "/" => {
                ev.prevent_default();
                focus(&document().get_element_by_id("jump"));
            }
            "g" => after_g.set_value(true),
            "j" | "k" => {
                ev.prevent_default();
                move_in_list(if key == "j" { 1 } else { -1 });
            }
            _ => {}
        }
    });
    on_cleanup(move || handle.remove());
}

#[cfg(feature = "hydrate")]
fn focus(element: &Option<web_sys::Element>) {
    use wasm_bindgen::JsCast as _;
    if let Some(element) = element.as_ref().and_then(|e| e.dyn_ref::<web_sys::HtmlElement>()) {
        let _ = element.focus();
    }
}

#[cfg(feature = "hydrate")]
fn blur_active() {
    use wasm_bindgen::JsCast as _;
    if let Some(element) = document().active_element().and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = element.blur();
    }
}

/// Focuses the job link `step` rows below (or above) the focused one; the first row when none
/// is focused.
#[cfg(feature = "hydrate")]
fn move_in_list(step: i32) {
    let Ok(links) = document().query_selector_all(r#"[data-testid="job-row"] a[data-job-link]"#) else {
        return;
    };
    let count = links.length() as i32;
    if count == 0 {
        return;
    }
    let active = document().active_element();
    let current = (0..count).find(|&i| {
        let link = links.item(i as u32);
        link.is_some() && active.as_ref().map(|a| a.is_same_node(link.as_ref())).unwrap_or(false)
    });
    let next = match current {
        Some(i) => (i + step).clamp(0, count - 1),
        None => 0,
    };
    use wasm_bindgen::JsCast as _;
    focus(&links.item(next as u32).and_then(|node| node.dyn_into::<web_sys::Element>().ok()));
}
