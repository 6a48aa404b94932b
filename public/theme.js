// Applies the console's colour theme before the first paint, so a dark page never flashes
// light. The choice ("light", "dark", or none for "follow the system") lives in localStorage
// under "backstop-theme"; the app's theme switch (app/src/theme.rs) changes it afterwards.
(function () {
  var choice = null;
  try { choice = localStorage.getItem('backstop-theme'); } catch (e) { /* storage blocked */ }
  var dark = choice === 'dark' || (choice !== 'light' && window.matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.classList.toggle('dark', dark);
})();
