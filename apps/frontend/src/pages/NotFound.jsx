import { Link } from 'react-router';
import { Heading } from '../components/Heading.jsx';

export function NotFound() {
  return (
    <>
      <Heading>Page not found</Heading>
      <p>There is no page at this address.</p>
      <p>
        <Link to="/">Go to the start page</Link>
      </p>
    </>
  );
}
