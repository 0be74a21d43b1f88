import { BrowserRouter, Link, Navigate, Route, Routes } from 'react-router';
import { routerBasename } from './basename.js';
import { ErrorBoundary } from './components/ErrorBoundary.jsx';
import { Login } from './pages/Login.jsx';
import { Logout } from './pages/Logout.jsx';
import { NotFound } from './pages/NotFound.jsx';
import { Register } from './pages/Register.jsx';
import { Welcome } from './pages/Welcome.jsx';
import { SessionProvider } from './SessionProvider.jsx';
import { useSession } from './session.js';

function Layout({ children }) {
  const { token } = useSession();
  return (
    <>
      <header className="site-header">
        <Link to="/" className="brand">
          Lab demo
        </Link>
        <nav aria-label="Main">
          {token ? (
            <>
              <Link to="/welcome">Welcome</Link> <Link to="/logout">Log out</Link>
            </>
          ) : (
            <>
              <Link to="/login">Log in</Link> <Link to="/register">Register</Link>
            </>
          )}
        </nav>
      </header>
      <main className="page">{children}</main>
    </>
  );
}

function Start() {
  const { token } = useSession();
  return <Navigate to={token ? '/welcome' : '/login'} replace />;
}

/** Every page of the app; rendered inside a router (a MemoryRouter in tests). */
export function AppRoutes() {
  return (
    <Layout>
      <Routes>
        <Route path="/" element={<Start />} />
        <Route path="/register" element={<Register />} />
        <Route path="/login" element={<Login />} />
        <Route path="/welcome" element={<Welcome />} />
        <Route path="/logout" element={<Logout />} />
        <Route path="*" element={<NotFound />} />
      </Routes>
    </Layout>
  );
}

export function App() {
  const basename = routerBasename(import.meta.env.BASE_URL);
  return (
    <ErrorBoundary>
      <SessionProvider>
        <BrowserRouter basename={basename}>
          <AppRoutes />
        </BrowserRouter>
      </SessionProvider>
    </ErrorBoundary>
  );
}
