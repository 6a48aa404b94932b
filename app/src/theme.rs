//! Light and dark: the console follows the system until the user picks one, and remembers the
//! pick (localStorage "backstop-theme"). `public/theme.js` applies it before the first paint;
//! this switch changes it afterwards. Tailwind's `dark:` variant keys off the `dark` class on
//! `<html>` (see `style/main.css`).

use leptos::prelude::*;

/// The user's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    /// Follow the operating system.
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

impl Theme {
    fn next(self) -> Theme {
        match self {
            Theme::System => Theme::Light,
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::System,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    #[cfg(feature = "hydrate")]
    fn stored() -> Theme {
        let stored =
            window().local_storage().ok().flatten().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten());
        match stored.as_deref() {
            Some("light") => Theme::Light,
            Some("dark") => Theme::Dark,
            _ => Theme::System,
        }
    }

    /// Remembers the choice and sets the `dark` class accordingly.
    #[cfg(feature = "hydrate")]
    fn apply(self) {
        if let Ok(Some(storage)) = window().local_storage() {
            let _ = match self {
                Theme::System => storage.remove_item(STORAGE_KEY),
                Theme::Light => storage.set_item(STORAGE_KEY, "light"),
                Theme::Dark => storage.set_item(STORAGE_KEY, "dark"),
            };
        }
        let system_dark = window()
            .match_media("(prefers-color-scheme: dark)")
            .ok()
            .flatten()
            .is_some_and(|query| query.matches());
        let dark = self == Theme::Dark || (self == Theme::System && system_dark);
        if let Some(html) = document().document_element() {
            let _ = html.class_list().toggle_with_force("dark", dark);
        }
    }
}

#[cfg(feature = "hydrate")]
const STORAGE_KEY: &str = "backstop-theme";

/// The switch in the header: system → light → dark → system.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    // The server cannot know the stored choice; the browser reads it once hydrated.
    let theme = RwSignal::new(Theme::System);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| theme.set(Theme::stored()));
    let cycle = move |_| {
        let next = theme.get_untracked().next();
        theme.set(next);
        #[cfg(feature = "hydrate")]
        next.apply();
    };
    view! {
        <button
            type="button"
            data-testid="theme-toggle"
            on:click=cycle
            title="Switch between the system's colours, light and dark"
            class="whitespace-nowrap rounded-full border border-slate-300 bg-white px-3 py-1 text-xs font-medium shadow-sm hover:bg-slate-50 max-sm:min-h-10 dark:border-slate-700 dark:bg-slate-900 dark:hover:bg-slate-800"
        >
            // On a phone just the choice; the full label stays for screen readers.
            <span class="max-sm:sr-only">"Theme: "</span>
            {move || theme.get().label()}
        </button>
    }
}
