import { useEffect } from 'react';
import { Link } from 'react-router';
import { Heading } from '../components/Heading.jsx';
import { InfoNotice } from '../components/Notice.jsx';
import { useSession } from '../session.js';

export function Logout() {
  const { signOut } = useSession();
  useEffect(() => {
    signOut();
  }, [signOut]);
  return (
    <>
      <Heading>Logged out</Heading>
      <InfoNotice>You have been logged out.</InfoNotice>
      <p>
        <Link to="/login">Log in again</Link>
      </p>
    </>
  );
}
