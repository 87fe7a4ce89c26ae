package com.s3bguploader.test

import android.app.Application
import android.app.Notification
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.ComponentName
import android.content.ContentProvider
import android.content.ContentValues
import android.content.Context
import android.content.ContextWrapper
import android.content.Intent
import android.content.IntentFilter
import android.content.res.Resources
import android.database.Cursor
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.os.Looper
import android.os.ParcelFileDescriptor
import com.s3bguploader.ContentFileOpener
import com.s3bguploader.NetworkMonitor
import com.s3bguploader.UploadNotifications
import com.s3bguploader.core.AggregateState
import com.s3bguploader.core.NoHandle
import com.s3bguploader.core.OsProgress
import com.s3bguploader.core.TransferSummary
import com.s3bguploader.core.UploadEngine
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowNetwork
import org.robolectric.shadows.ShadowNetworkCapabilities
import org.robolectric.util.ReflectionHelpers
import java.io.File
import java.util.Collections

/** An engine that only records what it is told about the network. */
class RecordingEngine : UploadEngine(NoHandle) {
    val states: MutableList<Pair<Boolean, Boolean>> = Collections.synchronizedList(mutableListOf())

    override fun setNetworkState(online: Boolean, metered: Boolean) {
        states += online to metered
    }
}

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35], shadows = [DetachableParcelFileDescriptor::class])
class PlatformPartsTest {
    private lateinit var app: Application
    private lateinit var cm: ConnectivityManager
    private var monitor: NetworkMonitor? = null

    @Before
    fun setUp() {
        TestSetup.before()
        app = RuntimeEnvironment.getApplication()
        cm = app.getSystemService(ConnectivityManager::class.java)!!
    }

    @After
    fun tearDown() {
        monitor?.stop()
        TestSetup.after()
    }

    private fun caps(vararg capabilities: Int): NetworkCapabilities {
        val nc = ShadowNetworkCapabilities.newInstance()
        capabilities.forEach { shadowOf(nc).addCapability(it) }
        return nc
    }

    private val internet = NetworkCapabilities.NET_CAPABILITY_INTERNET
    private val validated = NetworkCapabilities.NET_CAPABILITY_VALIDATED
    private val unmetered = NetworkCapabilities.NET_CAPABILITY_NOT_METERED

    /** Starts a monitor on [engine] and returns the callback Android would call. */
    private fun startMonitor(engine: UploadEngine): ConnectivityManager.NetworkCallback {
        monitor = NetworkMonitor.start(app, engine)
        assertNotNull(monitor)
        val callbacks = shadowOf(cm).networkCallbacks
        assertEquals("one default-network callback", 1, callbacks.size)
        return callbacks.first()
    }

    /** What Android sends when [network] becomes the default (API 29+): one dispatch. */
    private fun becomesDefault(cb: ConnectivityManager.NetworkCallback, network: Network, nc: NetworkCapabilities, blocked: Boolean) {
        cb.onAvailable(network)
        cb.onCapabilitiesChanged(network, nc)
        cb.onBlockedStatusChanged(network, blocked)
    }

    @Test
    fun onlineMeansValidatedAndNotBlockedAndOnlyChangesAreReported() {
        val engine = RecordingEngine()
        val cb = startMonitor(engine)
        // The default network at start: Wi-Fi, validated (TestSetup).
        assertEquals(listOf(true to false), engine.states.toList())
        // The same capabilities again: nothing new.
        cb.onCapabilitiesChanged(cm.activeNetwork!!, caps(internet, validated, unmetered))
        assertEquals(1, engine.states.size)

        // Mobile data becomes the default, not validated yet: offline, metered.
        val mobile = ShadowNetwork.newInstance(201)
        becomesDefault(cb, mobile, caps(internet), blocked = false)
        // Validated: online.
        cb.onCapabilitiesChanged(mobile, caps(internet, validated))
        // Android blocks the app's network (a cached process, Doze): offline.
        cb.onBlockedStatusChanged(mobile, true)
        cb.onBlockedStatusChanged(mobile, false)
        cb.onLost(mobile)

        // A network that arrives blocked is never reported online meanwhile.
        val wifi = ShadowNetwork.newInstance(202)
        becomesDefault(cb, wifi, caps(internet, validated, unmetered), blocked = true)
        val whileBlocked = engine.states.toList()
        cb.onBlockedStatusChanged(wifi, false)
        // A late onLost for an older network changes nothing.
        cb.onLost(mobile)
        // A captive portal: Android withdraws VALIDATED.
        cb.onCapabilitiesChanged(wifi, caps(internet, unmetered, NetworkCapabilities.NET_CAPABILITY_CAPTIVE_PORTAL))
        shadowOf(Looper.getMainLooper()).idle()

        assertEquals(
            listOf(
                true to false, // Wi-Fi at start
                false to true, // mobile, not validated
                true to true, // validated
                false to true, // blocked
                true to true, // unblocked
                false to false, // lost
                true to false, // Wi-Fi unblocked
                false to false, // captive portal
            ),
            engine.states.toList(),
        )
        assertEquals("nothing while the new network was blocked", 6, whileBlocked.size)
        engine.states.zipWithNext().forEach { (a, b) -> assertNotEquals("a repeated report", a, b) }
    }

    @Test
    fun withoutABlockedStatusAfterOnAvailableTheStateIsReportedOnceTheDispatchIsOver() {
        val engine = RecordingEngine()
        val cb = startMonitor(engine)
        val mobile = ShadowNetwork.newInstance(301)
        cb.onAvailable(mobile)
        cb.onCapabilitiesChanged(mobile, caps(internet, validated))
        assertEquals("held for the blocked status", listOf(true to false), engine.states.toList())
        shadowOf(Looper.getMainLooper()).idle()
        assertEquals(listOf(true to false, true to true), engine.states.toList())
    }

    @Test
    fun beforeApi26OnAvailableReadsTheCapabilitiesItself() {
        val engine = RecordingEngine()
        val cb = startMonitor(engine)
        val mobile = ShadowNetwork.newInstance(401)
        shadowOf(cm).setNetworkCapabilities(mobile, caps(internet, validated))
        val sdk = Build.VERSION.SDK_INT
        // API 24-25 send onAvailable alone: no onCapabilitiesChanged follows.
        ReflectionHelpers.setStaticField(Build.VERSION::class.java, "SDK_INT", 25)
        try {
            cb.onAvailable(mobile)
        } finally {
            ReflectionHelpers.setStaticField(Build.VERSION::class.java, "SDK_INT", sdk)
        }
        assertEquals(listOf(true to false, true to true), engine.states.toList())
    }
}
